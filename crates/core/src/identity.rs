//! Digests and content addresses: the names of objects, and their one text form `<algorithm>:<hex>`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

pub const DIGEST_LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Blake3,
    Sha256,
}

impl HashAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Blake3 => "blake3",
            HashAlgorithm::Sha256 => "sha256",
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "blake3" => Ok(HashAlgorithm::Blake3),
            "sha256" => Ok(HashAlgorithm::Sha256),
            other => Err(Error::UnsupportedAlgorithm(other.to_owned())),
        }
    }
}

/// A 32-byte digest together with the algorithm that produced it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    pub algorithm: HashAlgorithm,
    pub bytes: [u8; DIGEST_LEN],
}

/// The primary digest of an object names it.
pub type ContentAddress = Digest;

impl Digest {
    pub fn new(algorithm: HashAlgorithm, bytes: [u8; DIGEST_LEN]) -> Self {
        Digest { algorithm, bytes }
    }

    pub fn hex(&self) -> String {
        // Into a buffer of the right size: `hex::encode` builds its string a char at a time, and a
        // listing spells an address for every object.
        let mut text = [0u8; DIGEST_LEN * 2];
        hex::encode_to_slice(self.bytes, &mut text).expect("two hex digits a byte");
        String::from_utf8(text.to_vec()).expect("hex digits are ASCII")
    }

    /// Parses the text form `<algorithm>:<64 lowercase hex digits>`, and nothing else.
    pub fn parse(value: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidAddress { value: value.to_owned(), reason };
        let (algorithm, hex) = value.split_once(':').ok_or_else(|| invalid("expected \"<algorithm>:<hex>\""))?;
        let algorithm: HashAlgorithm =
            algorithm.parse().map_err(|_| invalid("the algorithm must be \"blake3\" or \"sha256\""))?;
        let bytes = parse_hex_digest(hex).ok_or_else(|| invalid("expected 64 lowercase hex digits"))?;
        Ok(Digest { algorithm, bytes })
    }
}

/// Decodes exactly 64 lowercase hex digits.
pub fn parse_hex_digest(hex: &str) -> Option<[u8; DIGEST_LEN]> {
    let lowercase = hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex.len() != DIGEST_LEN * 2 || !lowercase {
        return None;
    }
    let mut bytes = [0u8; DIGEST_LEN];
    hex::decode_to_slice(hex, &mut bytes).ok()?;
    Some(bytes)
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

    #[test]
    fn round_trips_the_text_form() {
        let text = format!("blake3:{HEX}");
        let digest = Digest::parse(&text).unwrap();
        assert_eq!(digest.algorithm, HashAlgorithm::Blake3);
        assert_eq!(digest.to_string(), text);
        assert_eq!(Digest::parse(&format!("sha256:{HEX}")).unwrap().algorithm, HashAlgorithm::Sha256);
    }

    #[test]
    fn rejects_everything_outside_the_form() {
        let upper = HEX.to_uppercase();
        let cases = [
            String::new(),
            HEX.to_owned(),
            format!("blake3:{}", &HEX[1..]),
            format!("blake3:{HEX}0"),
            format!("BLAKE3:{HEX}"),
            format!("blake3:{upper}"),
            format!("md5:{HEX}"),
            format!("blake3: {}", &HEX[1..]),
            format!("blake3:{}g", &HEX[1..]),
            format!("blake3:{HEX}:"),
            format!("blake3:../{}", &HEX[3..]),
            format!("blake3:{}é", &HEX[2..]),
        ];
        for case in cases {
            let err = Digest::parse(&case).unwrap_err();
            assert_eq!(err.code(), "INVALID_ADDRESS", "{case:?}");
            assert!(err.to_string().contains(&format!("{case:?}")), "message names the value: {err}");
        }
    }
}
