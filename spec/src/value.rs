//! A key's type and range ([`Kind`]) and a typed value of it ([`Value`]), with the
//! checks and the text forms that sweep files, `--set` and flags share.

use std::fmt;

/// The type and range of a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// One of the listed names.
    Name {
        /// What the names are (`model`, `augmentation`), for messages.
        what: &'static str,
        /// The names.
        names: &'static [&'static str],
    },
    /// An integer in `min..=max`.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A number in `[min, max]`, open at the ends marked so.
    Float {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Whether `min` itself is excluded.
        min_open: bool,
        /// Whether `max` itself is excluded.
        max_open: bool,
    },
    /// true or false.
    Bool,
    /// A non-empty list of integers in `1..=max`.
    IntList {
        /// Largest entry.
        max: i64,
    },
    /// A list of the listed names.
    NameList {
        /// What the names are, for messages.
        what: &'static str,
        /// The names.
        names: &'static [&'static str],
    },
}

/// A typed value of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A name.
    Name(String),
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// Integers.
    IntList(Vec<i64>),
    /// Names.
    NameList(Vec<String>),
}

/// The canonical text of a value: what trial ids hash, so it never changes.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Name(s) => write!(f, "{s}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::IntList(v) => {
                let items: Vec<String> = v.iter().map(i64::to_string).collect();
                write!(f, "[{}]", items.join(","))
            }
            Value::NameList(v) => write!(f, "[{}]", v.join(",")),
        }
    }
}

fn range_text(min: f64, max: f64, min_open: bool, max_open: bool) -> String {
    format!(
        "{}{min}, {max}{}",
        if min_open { "(" } else { "[" },
        if max_open { ")" } else { "]" }
    )
}

impl Kind {
    /// A float kind.
    pub const fn float(min: f64, max: f64, min_open: bool, max_open: bool) -> Kind {
        Kind::Float {
            min,
            max,
            min_open,
            max_open,
        }
    }

    /// Whether values are lists (a grid over such a key is a list of lists).
    pub fn is_list(self) -> bool {
        matches!(self, Kind::IntList { .. } | Kind::NameList { .. })
    }

    /// Whether values are numbers (uniform and log-uniform draws apply).
    pub fn is_numeric(self) -> bool {
        matches!(self, Kind::Int { .. } | Kind::Float { .. })
    }

    /// The type and range in words, for help texts and errors.
    pub fn describe(self) -> String {
        match self {
            Kind::Name { names, .. } => format!("one of {}", names.join(", ")),
            Kind::Int { min, max } => format!("integer {min}..={max}"),
            Kind::Float {
                min,
                max,
                min_open,
                max_open,
            } => {
                format!("number in {}", range_text(min, max, min_open, max_open))
            }
            Kind::Bool => "true or false".into(),
            Kind::IntList { max } => format!("list of integers 1..={max}"),
            Kind::NameList { names, .. } => format!("list of {}", names.join(", ")),
        }
    }

    /// Checks an integer against the range; the reason when it does not fit.
    pub fn int_error(min: i64, max: i64, i: i64) -> Option<String> {
        (!(min..=max).contains(&i))
            .then(|| format!("{i} is out of range: must be between {min} and {max}"))
    }

    /// Checks a name against the list; the reason when it is unknown (worded as
    /// the enums of [`crate::names`] word it).
    pub fn name_error(what: &str, names: &[&str], s: &str) -> Option<String> {
        (!names.contains(&s)).then(|| format!("unknown {what} '{s}' (known: {})", names.join(", ")))
    }

    /// Checks a value against this kind; `None` when it fits, else the reason
    /// (the value included).
    pub fn check(self, v: &Value) -> Option<String> {
        match (self, v) {
            (Kind::Name { what, names }, Value::Name(s)) => Kind::name_error(what, names, s),
            (Kind::Int { min, max }, Value::Int(i)) => Kind::int_error(min, max, *i),
            (
                Kind::Float {
                    min,
                    max,
                    min_open,
                    max_open,
                },
                Value::Float(x),
            ) => {
                let low = if min_open { *x > min } else { *x >= min };
                let high = if max_open { *x < max } else { *x <= max };
                (!(x.is_finite() && low && high)).then(|| {
                    format!(
                        "{x} is out of range: must be in {}",
                        range_text(min, max, min_open, max_open)
                    )
                })
            }
            (Kind::Bool, Value::Bool(_)) => None,
            (Kind::IntList { max }, Value::IntList(items)) => {
                if items.is_empty() {
                    return Some("empty list".into());
                }
                items.iter().find_map(|i| Kind::int_error(1, max, *i))
            }
            (Kind::NameList { what, names }, Value::NameList(items)) => {
                items.iter().find_map(|s| Kind::name_error(what, names, s))
            }
            (kind, v) => Some(format!(
                "{v} has the wrong type: expected {}",
                kind.describe()
            )),
        }
    }

    /// Parses a flag's text (`3`, `0.01`, `adam`, `true`, `64,64,128` or
    /// `[64, 64, 128]`) into a checked value of this kind.
    pub fn parse_text(self, text: &str) -> Result<Value, String> {
        let t = text.trim();
        let items = || -> Vec<&str> {
            let inner = t
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or(t);
            inner
                .split(',')
                .map(|s| s.trim().trim_matches('"'))
                .filter(|s| !s.is_empty())
                .collect()
        };
        let int = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| format!("'{s}' is not an integer"))
        };
        let v = match self {
            Kind::Name { .. } => Value::Name(t.trim_matches('"').to_string()),
            Kind::Int { .. } => Value::Int(int(t)?),
            Kind::Float { .. } => Value::Float(
                t.parse::<f64>()
                    .map_err(|_| format!("'{t}' is not a number"))?,
            ),
            Kind::Bool => Value::Bool(
                t.parse::<bool>()
                    .map_err(|_| format!("'{t}' is not true or false"))?,
            ),
            Kind::IntList { .. } => {
                Value::IntList(items().into_iter().map(int).collect::<Result<_, _>>()?)
            }
            Kind::NameList { .. } => {
                Value::NameList(items().into_iter().map(str::to_string).collect())
            }
        };
        match self.check(&v) {
            Some(reason) => Err(reason),
            None => Ok(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_value() {
        let k = Kind::Int { min: 1, max: 10 };
        assert_eq!(
            k.check(&Value::Int(-3)).unwrap(),
            "-3 is out of range: must be between 1 and 10"
        );
        let lr = Kind::float(0.0, 10.0, true, false);
        assert!(lr
            .check(&Value::Float(0.0))
            .unwrap()
            .contains("must be in (0, 10]"));
        assert!(lr.check(&Value::Float(f64::NAN)).is_some());
        assert!(lr.check(&Value::Float(10.0)).is_none());
        assert!(k
            .check(&Value::Name("x".into()))
            .unwrap()
            .contains("wrong type"));
    }

    #[test]
    fn text_forms() {
        let l = Kind::IntList { max: 100 };
        assert_eq!(
            l.parse_text("64,64,8").unwrap(),
            Value::IntList(vec![64, 64, 8])
        );
        assert_eq!(l.parse_text("[1, 2]").unwrap(), Value::IntList(vec![1, 2]));
        assert!(l.parse_text("1,0").is_err());
        let n = Kind::NameList {
            what: "letter",
            names: &["a", "b"],
        };
        assert_eq!(
            n.parse_text("a,c").unwrap_err(),
            "unknown letter 'c' (known: a, b)"
        );
        assert_eq!(n.parse_text("").unwrap(), Value::NameList(vec![]));
        assert_eq!(Value::Float(1.0).to_string(), "1.0");
        assert_eq!(Value::IntList(vec![1, 2]).to_string(), "[1,2]");
    }
}
