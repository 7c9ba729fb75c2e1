#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| api_fuzz::append_body(bytes));
