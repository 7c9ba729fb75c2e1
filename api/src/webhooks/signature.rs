//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>, symmetric `v1`): the
//! secret is `whsec_` + base64 of the key; a delivery carries `webhook-id`,
//! `webhook-timestamp` (unix seconds of the attempt) and `webhook-signature` =
//! `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix of a serialised secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook's signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A fresh random key of 32 bytes (from two v4 UUIDs: 244 random bits).
    pub fn generate() -> Secret {
        let mut key = Vec::with_capacity(32);
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        Secret(key)
    }

    /// Reads `whsec_<base64>` (the prefix is optional, as the reference libraries accept).
    pub fn parse(text: &str) -> Result<Secret, String> {
        let b64 = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let key = STANDARD
            .decode(b64)
            .map_err(|e| format!("a webhook secret is `whsec_` + base64: {e}"))?;
        if key.is_empty() {
            return Err("a webhook secret may not be empty".into());
        }
        Ok(Secret(key))
    }

    /// `whsec_` + base64 of the key.
    pub fn serialise(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` header value for one attempt.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.serialise())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let text = String::deserialize(d)?;
        Secret::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published test vectors of the Standard Webhooks reference libraries
    /// (`libraries/javascript/src/webhook.test.ts` and `libraries/python/tests/test_webhooks.py`:
    /// "sign function works"; `libraries/rust/src/lib.rs`: `test_sign`).
    #[test]
    fn the_standard_webhooks_test_vectors_pass() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let secret = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            secret.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        // Without the prefix, as the reference libraries also accept.
        assert_eq!(
            Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
            Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
        );
    }

    #[test]
    fn a_generated_secret_round_trips_and_bad_ones_are_refused() {
        let s = Secret::generate();
        let text = s.serialise();
        assert!(text.starts_with("whsec_"), "{text}");
        assert_eq!(Secret::parse(&text).unwrap(), s);
        assert!(Secret::parse("whsec_").is_err());
        assert!(Secret::parse("whsec_not base64!").is_err());
    }
}
