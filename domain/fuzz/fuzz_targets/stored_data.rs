#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| domain_fuzz::stored_data(bytes));
