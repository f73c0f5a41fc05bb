//! IPC keys (`key_t`).

use std::fmt;
use std::str::FromStr;

/// The key that names an object, like System V's `key_t`.
///
/// Written in decimal or `0x` hex; printed as `ipcs` does, `0x%08x`. [`Key::PRIVATE`]
/// (`IPC_PRIVATE`, 0) always makes a new object that can be found only by id.
///
/// ```
/// use ipckit::ns::Key;
/// let k: Key = "0x1f".parse().unwrap();
/// assert_eq!(k, Key(31));
/// assert_eq!(k.to_string(), "0x0000001f");
/// assert_eq!("-1".parse::<Key>().unwrap().to_string(), "0xffffffff");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub i32);

impl Key {
    /// `IPC_PRIVATE`: always a new object.
    pub const PRIVATE: Key = Key(0);

    /// True for [`Key::PRIVATE`].
    pub fn is_private(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0 as u32)
    }
}

impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A key that is neither a decimal `i32` nor `0x` hex fitting 32 bits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key {0:?}: write a decimal number or 0x followed by up to 8 hex digits")]
pub struct ParseKeyError(pub String);

impl FromStr for Key {
    type Err = ParseKeyError;
    fn from_str(s: &str) -> Result<Key, ParseKeyError> {
        let t = s.trim();
        let err = || ParseKeyError(s.to_string());
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            if hex.is_empty() || hex.len() > 8 {
                return Err(err());
            }
            return u32::from_str_radix(hex, 16).map(|v| Key(v as i32)).map_err(|_| err());
        }
        if let Ok(v) = t.parse::<i32>() {
            return Ok(Key(v));
        }
        // Decimal values up to u32::MAX, as `ipcs` users may paste them.
        t.parse::<u32>().map(|v| Key(v as i32)).map_err(|_| err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!("1234".parse::<Key>().unwrap(), Key(1234));
        assert_eq!("0xABCD".parse::<Key>().unwrap(), Key(0xabcd));
        assert_eq!("4294967295".parse::<Key>().unwrap(), Key(-1));
        assert_eq!(Key(0xabcd).to_string(), "0x0000abcd");
        for bad in ["", "0x", "0x123456789", "abc", "12x", "0xg1"] {
            assert!(bad.parse::<Key>().is_err(), "{bad}");
        }
        assert!(Key::PRIVATE.is_private());
    }
}
