//! MAC addresses: parsed once where they come in, then compared and printed in one form.
//!
//! Upstream kept MACs as strings and lower-cased them wherever two were compared
//! (`plugins/standard.py`, `node_cache.py`, `firewall.py`). Here a [`Mac`] is six octets:
//! two spellings of the same address are the same value, and it prints only as lower-case
//! colon form, the form Ironic stores, the node cache keeps and iptables is given.
//!
//! What parses is what the `validate_interfaces` hook has always accepted as a NIC's MAC:
//! six pairs of ASCII hex digits, either case, separated by colons, nothing around them.
//! Text from outside that does not parse is not a [`Mac`]; each caller keeps its own rule
//! for it (skipped, kept as text, or sent on as written), see the callers' docs.

use std::fmt;
use std::str::FromStr;

/// A MAC address (EUI-48). Displays as lower-case colon form, `52:54:00:ab:cd:ef`; orders as
/// that text does (octet by octet).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac([u8; 6]);

/// Text that is not a MAC in colon form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAMac;

impl fmt::Display for NotAMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a MAC address (six pairs of hex digits separated by colons)")
    }
}

impl std::error::Error for NotAMac {}

impl Mac {
    /// The address with these octets.
    pub const fn new(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }

    /// Its six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Parses colon form, `aa:bb:cc:dd:ee:ff` in either case; nothing else (no dashes, no
    /// spaces, no other length).
    pub fn parse(text: &str) -> Result<Mac, NotAMac> {
        let mut groups = text.split(':');
        let mut octets = [0u8; 6];
        for octet in &mut octets {
            let [high, low] = groups.next().unwrap_or_default().as_bytes() else {
                return Err(NotAMac);
            };
            *octet = (hex(*high)? << 4) | hex(*low)?;
        }
        if groups.next().is_some() {
            return Err(NotAMac);
        }
        Ok(Mac(octets))
    }
}

/// The value of one ASCII hex digit.
fn hex(digit: u8) -> Result<u8, NotAMac> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(NotAMac),
    }
}

impl FromStr for Mac {
    type Err = NotAMac;

    fn from_str(text: &str) -> Result<Mac, NotAMac> {
        Mac::parse(text)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Quoted colon form, as the string it replaces printed: a log field `macs = ?list` reads
/// the same whether the list holds strings or [`Mac`]s.
impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    #[test]
    fn colon_form_in_either_case_parses() {
        assert_eq!(
            mac("52:54:00:ab:cd:ef").octets(),
            [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]
        );
        assert_eq!(mac("AA:bb:Cc:dD:EE:ff"), mac("aa:bb:cc:dd:ee:ff"));
        assert_eq!(mac("00:00:00:00:00:00"), Mac::new([0; 6]));
        assert_eq!(mac("FF:FF:FF:FF:FF:FF"), Mac::new([0xff; 6]));
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            ":",
            ":::::",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:",
            "aa:bb:cc:dd:ee:f",
            "aa:bb:cc:dd:ee:ff:",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:ff ",
            " aa:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:ff\n",
            "02:ab:cd:ef:00:19\n-F INPUT",
            "aa-bb-cc-dd-ee-ff",
            "aa:bb-cc:dd:ee:ff",
            "aabb.ccdd.eeff",
            "aabbccddeeff",
            "gg:bb:cc:dd:ee:ff",
            "a:bb:cc:dd:ee:fff",
            "+a:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:f\u{0661}",
            "\u{ff10}a:bb:cc:dd:ee:ff",
            // Only ASCII digits count (the Kelvin sign lower-cases to an ASCII `k`).
            "aa:bb:cc:dd:ee:\u{212a}f",
            "None",
        ] {
            assert_eq!(text.parse::<Mac>(), Err(NotAMac), "{text:?}");
        }
    }

    #[test]
    fn displays_in_lower_case_colon_form() {
        assert_eq!(mac("AA:0B:Cc:dD:EE:F0").to_string(), "aa:0b:cc:dd:ee:f0");
        assert_eq!(
            Mac::new([1, 2, 3, 4, 5, 6]).to_string(),
            "01:02:03:04:05:06"
        );
        assert_eq!(
            format!("{:?}", [mac("AA:BB:CC:DD:EE:FF")]),
            r#"["aa:bb:cc:dd:ee:ff"]"#,
            "Debug reads like the string"
        );
    }

    #[test]
    fn orders_as_its_text() {
        let macs: BTreeSet<Mac> = [
            "0a:00:00:00:00:00",
            "09:ff:ff:ff:ff:ff",
            "A0:00:00:00:00:00",
        ]
        .into_iter()
        .map(mac)
        .collect();
        let texts: Vec<String> = macs.iter().map(Mac::to_string).collect();
        assert_eq!(
            texts,
            [
                "09:ff:ff:ff:ff:ff",
                "0a:00:00:00:00:00",
                "a0:00:00:00:00:00"
            ]
        );
    }
}

#[cfg(test)]
mod properties {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::testing::{mac, near_mac, text};

    /// The accepted shape, spelled out another way: six pairs of hex digits joined by
    /// colons.
    fn mac_shape(s: &str) -> bool {
        let groups: Vec<&str> = s.split(':').collect();
        groups.len() == 6
            && groups
                .iter()
                .all(|g| g.len() == 2 && g.chars().all(|c| c.is_ascii_hexdigit()))
    }

    proptest! {
        #[test]
        fn parses_exactly_six_hex_pairs(s in prop_oneof![mac(), near_mac(), text()]) {
            prop_assert_eq!(s.parse::<Mac>().is_ok(), mac_shape(&s), "{:?}", s);
        }

        #[test]
        fn displays_the_text_in_lower_case(s in mac()) {
            let parsed: Mac = s.parse().unwrap();
            prop_assert_eq!(parsed.to_string(), s.to_ascii_lowercase());
            prop_assert_eq!(parsed.to_string().parse::<Mac>(), Ok(parsed));
        }

        #[test]
        fn octets_read_back(octets in any::<[u8; 6]>()) {
            let mac = Mac::new(octets);
            prop_assert_eq!(mac.to_string().parse::<Mac>().map(|m| m.octets()), Ok(octets));
            prop_assert_eq!(mac.to_string().to_uppercase().parse::<Mac>(), Ok(mac));
        }

        #[test]
        fn equal_and_ordered_as_the_lower_case_text(a in mac(), b in mac()) {
            let (ma, mb): (Mac, Mac) = (a.parse().unwrap(), b.parse().unwrap());
            let (la, lb) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
            prop_assert_eq!(ma == mb, la == lb);
            prop_assert_eq!(ma.cmp(&mb), la.cmp(&lb));
            let set: BTreeSet<Mac> = [ma, mb].into_iter().collect();
            prop_assert_eq!(set.len(), if la == lb { 1 } else { 2 });
        }
    }
}
