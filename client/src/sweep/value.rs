//! Turning TOML values into typed key values, checked against the key table.

use super::error::SweepError;
use super::keys::{find, float_error, KeyDef, Kind, Value};

/// The definition of `name`, or an error naming `path` and listing the keys.
pub fn key_def(path: &str, name: &str) -> Result<&'static KeyDef, SweepError> {
    find(name).ok_or_else(|| {
        let known: Vec<&str> = super::keys::KEYS.iter().map(|k| k.name).collect();
        SweepError::key(path, format!("unknown key (known: {})", known.join(", ")))
    })
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    }
}

fn name(path: &str, v: &toml::Value, allowed: &[&str]) -> Result<String, SweepError> {
    let toml::Value::String(s) = v else {
        return Err(SweepError::key(
            path,
            format!("expected a string, got {} ({v})", type_name(v)),
        ));
    };
    if allowed.contains(&s.as_str()) {
        Ok(s.clone())
    } else {
        Err(SweepError::key(
            path,
            format!("unknown value \"{s}\" (known: {})", allowed.join(", ")),
        ))
    }
}

fn int(path: &str, v: &toml::Value, min: i64, max: i64) -> Result<i64, SweepError> {
    let toml::Value::Integer(i) = v else {
        return Err(SweepError::key(
            path,
            format!("expected an integer, got {} ({v})", type_name(v)),
        ));
    };
    if (min..=max).contains(i) {
        Ok(*i)
    } else {
        Err(SweepError::key(
            path,
            format!("{i} is out of range: must be between {min} and {max}"),
        ))
    }
}

/// Checks one TOML value for key `def` at `path`.
pub fn typed(path: &str, def: &KeyDef, v: &toml::Value) -> Result<Value, SweepError> {
    match def.kind {
        Kind::Name(allowed) => name(path, v, allowed).map(Value::Name),
        Kind::Int { min, max } => int(path, v, min, max).map(Value::Int),
        Kind::Float { .. } => {
            let x = match v {
                toml::Value::Float(x) => *x,
                toml::Value::Integer(i) => *i as f64,
                _ => {
                    return Err(SweepError::key(
                        path,
                        format!("expected a number, got {} ({v})", type_name(v)),
                    ))
                }
            };
            match float_error(x, def.kind) {
                Some(reason) => Err(SweepError::key(
                    path,
                    format!("{x} is out of range: {reason}"),
                )),
                None => Ok(Value::Float(x)),
            }
        }
        Kind::Bool => match v {
            toml::Value::Boolean(b) => Ok(Value::Bool(*b)),
            _ => Err(SweepError::key(
                path,
                format!("expected true or false, got {} ({v})", type_name(v)),
            )),
        },
        Kind::IntList { max } => {
            let toml::Value::Array(items) = v else {
                return Err(SweepError::key(
                    path,
                    format!("expected a list of integers, got {} ({v})", type_name(v)),
                ));
            };
            if items.is_empty() {
                return Err(SweepError::key(path, "empty list"));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, x)| int(&format!("{path}[{i}]"), x, 1, max))
                .collect::<Result<_, _>>()
                .map(Value::IntList)
        }
        Kind::NameList(allowed) => {
            let toml::Value::Array(items) = v else {
                return Err(SweepError::key(
                    path,
                    format!("expected a list of names, got {} ({v})", type_name(v)),
                ));
            };
            items
                .iter()
                .enumerate()
                .map(|(i, x)| name(&format!("{path}[{i}]"), x, allowed))
                .collect::<Result<_, _>>()
                .map(Value::NameList)
        }
    }
}

/// Whether a key's values are lists, so that a grid over it is a list of lists.
pub fn is_list(def: &KeyDef) -> bool {
    matches!(def.kind, Kind::IntList { .. } | Kind::NameList(_))
}

/// Parses a `--set key=value` value: TOML when it parses, else a bare string.
pub fn parse_cli_value(text: &str) -> toml::Value {
    let doc = format!("v = {text}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.to_string())),
        Err(_) => toml::Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(key: &str, v: toml::Value) -> Result<Value, String> {
        typed(&format!("base.{key}"), find(key).unwrap(), &v).map_err(|e| e.to_string())
    }

    #[test]
    fn types_and_ranges() {
        assert_eq!(check("epochs", toml::Value::Integer(3)), Ok(Value::Int(3)));
        assert_eq!(check("lr", toml::Value::Integer(1)), Ok(Value::Float(1.0)));
        let e = check("epochs", toml::Value::Integer(-3)).unwrap_err();
        assert_eq!(
            e,
            "base.epochs: -3 is out of range: must be between 1 and 10000"
        );
        let e = check("epochs", toml::Value::String("ten".into())).unwrap_err();
        assert!(
            e.starts_with("base.epochs: expected an integer, got a string"),
            "{e}"
        );
        let e = check("lr", toml::Value::Float(0.0)).unwrap_err();
        assert!(e.contains("must be in (0, 10]"), "{e}");
        let e = check("model", toml::Value::String("alexnet".into())).unwrap_err();
        assert!(
            e.starts_with("base.model: unknown value \"alexnet\""),
            "{e}"
        );
        let e = check(
            "stem",
            toml::Value::Array(vec![toml::Value::Integer(8), toml::Value::Integer(0)]),
        )
        .unwrap_err();
        assert!(e.starts_with("base.stem[1]: 0 is out of range"), "{e}");
    }

    #[test]
    fn cli_values() {
        assert_eq!(parse_cli_value("3"), toml::Value::Integer(3));
        assert_eq!(
            parse_cli_value("vovnet-39"),
            toml::Value::String("vovnet-39".into())
        );
        assert_eq!(parse_cli_value("\"x\""), toml::Value::String("x".into()));
        assert_eq!(
            parse_cli_value("[1, 2]"),
            toml::Value::Array(vec![toml::Value::Integer(1), toml::Value::Integer(2)])
        );
    }
}
