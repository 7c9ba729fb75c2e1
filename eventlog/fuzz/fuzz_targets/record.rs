#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| eventlog_fuzz::record(bytes));
