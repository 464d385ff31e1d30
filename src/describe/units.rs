//! Quantities people write by hand in app descriptions: memory and disk sizes
//! (`512Mi`, `10GB`), durations (`30s`, `1h30m`) and CPU (`500m`, `0.5`).
//! Each parses from a string or a number and serialises back to its canonical
//! text, so an import followed by an export is stable.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;

const KI: u64 = 1024;

/// A size in bytes. Accepts Kubernetes (`Ki`, `Mi`, `Gi`, `Ti`), Docker
/// (`k`, `m`, `g`, `b`) and SI (`KB`, `MB`, `GB`, `TB`) suffixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

impl Size {
    pub const fn mib(n: u64) -> Self {
        Size(n * KI * KI)
    }
    pub const fn gib(n: u64) -> Self {
        Size(n * KI * KI * KI)
    }
    pub fn as_gib(self) -> f64 {
        self.0 as f64 / (KI * KI * KI) as f64
    }
    pub fn as_mib(self) -> f64 {
        self.0 as f64 / (KI * KI) as f64
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("`{text}` is not a size; write it like 512Mi, 2Gi or 10GB"))?;
        let factor: f64 = match unit.trim() {
            "" | "b" | "B" => 1.0,
            "k" | "K" | "Ki" | "KiB" | "kb" => KI as f64,
            "KB" => 1e3,
            "m" | "M" | "Mi" | "MiB" | "mb" => (KI * KI) as f64,
            "MB" => 1e6,
            "g" | "G" | "Gi" | "GiB" | "gb" => (KI * KI * KI) as f64,
            "GB" => 1e9,
            "t" | "T" | "Ti" | "TiB" | "tb" => (KI * KI * KI * KI) as f64,
            "TB" => 1e12,
            other => {
                return Err(format!(
                    "unknown size unit `{other}` in `{text}`; use Mi, Gi, Ti, MB, GB or TB"
                ));
            }
        };
        if !value.is_finite() || value < 0.0 {
            return Err(format!("`{text}` is not a valid size"));
        }
        Ok(Size((value * factor).round() as u64))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (suffix, unit) in [
            ("Ti", KI.pow(4)),
            ("Gi", KI.pow(3)),
            ("Mi", KI.pow(2)),
            ("Ki", KI),
        ] {
            if b >= unit && b.is_multiple_of(unit) {
                return write!(f, "{}{}", b / unit, suffix);
            }
        }
        if b >= KI.pow(3) {
            return write!(f, "{:.2}Gi", b as f64 / KI.pow(3) as f64);
        }
        if b >= KI.pow(2) {
            return write!(f, "{}Mi", (b as f64 / KI.pow(2) as f64).round());
        }
        write!(f, "{b}")
    }
}

/// A duration in whole seconds: `90`, `30s`, `5m`, `2h`, `1h30m`, `1d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

impl Duration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty duration; write it like 30s, 5m or 2h".into());
        }
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Duration(n));
        }
        let mut total = 0u64;
        let mut num = String::new();
        let mut chars = t.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let mut unit = c.to_string();
            if c == 'm' && chars.peek() == Some(&'s') {
                unit.push(chars.next().unwrap_or('s'));
            }
            let n: u64 = num.parse().map_err(|_| {
                format!("`{text}` is not a duration; write it like 30s, 5m, 2h or 1h30m")
            })?;
            num.clear();
            let secs = match unit.as_str() {
                "ms" => 0,
                "s" => n,
                "m" => n * 60,
                "h" => n * 3600,
                "d" => n * 86_400,
                _ => {
                    return Err(format!(
                        "unknown duration unit `{unit}` in `{text}`; use s, m, h or d"
                    ));
                }
            };
            total += secs;
        }
        if !num.is_empty() {
            return Err(format!(
                "`{text}` has a number without a unit at the end; write it like 30s, 5m or 2h"
            ));
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s == 0 {
            return write!(f, "0s");
        }
        let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if m > 0 {
            out.push_str(&format!("{m}m"));
        }
        if sec > 0 {
            out.push_str(&format!("{sec}s"));
        }
        write!(f, "{out}")
    }
}

/// CPU in millicores: `0.5`, `2`, `"500m"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cpu(pub u32);

impl Cpu {
    pub fn cores(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    pub fn from_cores(c: f64) -> Self {
        Cpu((c * 1000.0).round() as u32)
    }
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = || format!("`{text}` is not a CPU amount; write it like 0.5, 2 or 500m");
        let value = if let Some(m) = t.strip_suffix('m') {
            m.parse::<f64>().map_err(|_| bad())? / 1000.0
        } else {
            t.parse::<f64>().map_err(|_| bad())?
        };
        if !value.is_finite() || value <= 0.0 || value > 1024.0 {
            return Err(format!("CPU `{text}` must be between 1m and 1024 cores"));
        }
        Ok(Cpu::from_cores(value).max(Cpu(1)))
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

/// Deserialises any of the three from either a YAML string or a number.
macro_rules! text_or_number {
    ($ty:ident, $expect:literal, $schema_desc:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expect)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        $ty::parse(v).map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        $ty::parse(&v.to_string()).map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        $ty::parse(&v.to_string()).map_err(E::custom)
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        $ty::parse(&v.to_string()).map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "description": $schema_desc,
                    "type": ["string", "number"]
                })
            }
        }
    };
}

text_or_number!(
    Size,
    "a size such as 512Mi, 2Gi or 10GB",
    "A size: 512Mi, 2Gi, 10GB, 1Ti (Kubernetes, Docker or SI suffixes)."
);
text_or_number!(
    Duration,
    "a duration such as 30s, 5m or 2h",
    "A duration: seconds as a number, or 30s, 5m, 2h, 1h30m, 1d."
);
text_or_number!(
    Cpu,
    "a CPU amount such as 0.5, 2 or 500m",
    "CPU cores: 0.5, 2, or millicores such as 500m."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_every_common_notation() {
        assert_eq!(Size::parse("512Mi").unwrap(), Size::mib(512));
        assert_eq!(Size::parse("2g").unwrap(), Size::gib(2));
        assert_eq!(Size::parse("10GB").unwrap().0, 10_000_000_000);
        assert_eq!(Size::parse("1.5Gi").unwrap(), Size::mib(1536));
        assert!(Size::parse("ten").is_err());
        assert!(
            Size::parse("5Qb")
                .unwrap_err()
                .contains("unknown size unit")
        );
    }

    #[test]
    fn durations_parse_compound_forms() {
        assert_eq!(Duration::parse("1h30m").unwrap().0, 5400);
        assert_eq!(Duration::parse("45").unwrap().0, 45);
        assert_eq!(Duration::parse("2d").unwrap().0, 172_800);
        assert!(Duration::parse("5 minutes").is_err());
        assert!(Duration::parse("10x").is_err());
        assert_eq!(Duration(5400).to_string(), "1h30m");
    }

    #[test]
    fn cpu_accepts_cores_and_millicores() {
        assert_eq!(Cpu::parse("500m").unwrap(), Cpu(500));
        assert_eq!(Cpu::parse("2").unwrap(), Cpu(2000));
        assert_eq!(Cpu::parse("0.25").unwrap(), Cpu(250));
        assert!(Cpu::parse("-1").is_err());
        assert_eq!(Cpu(1500).to_string(), "1500m");
    }
}
