//! Turning TOML values into typed key values, checked against the key registry of
//! `vov-spec`.

use vov_spec::keys::{find, names, KeyDef};
use vov_spec::{Kind, Value};

use super::error::SweepError;

/// The definition of `name`, or an error naming `path` and listing the keys.
pub fn key_def(path: &str, name: &str) -> Result<&'static KeyDef, SweepError> {
    find(name).ok_or_else(|| {
        SweepError::key(path, format!("unknown key (known: {})", names().join(", ")))
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

fn wrong(path: &str, want: &str, v: &toml::Value) -> SweepError {
    SweepError::key(path, format!("expected {want}, got {} ({v})", type_name(v)))
}

/// The TOML value as a value of `kind`, its type checked (not its range).
fn shape(path: &str, kind: Kind, v: &toml::Value) -> Result<Value, SweepError> {
    let items = |want: &str| match v {
        toml::Value::Array(items) => Ok(items),
        _ => Err(wrong(path, want, v)),
    };
    Ok(match (kind, v) {
        (Kind::Name { .. }, toml::Value::String(s)) => Value::Name(s.clone()),
        (Kind::Name { .. }, _) => return Err(wrong(path, "a string", v)),
        (Kind::Int { .. }, toml::Value::Integer(i)) => Value::Int(*i),
        (Kind::Int { .. }, _) => return Err(wrong(path, "an integer", v)),
        (Kind::Float { .. }, toml::Value::Float(x)) => Value::Float(*x),
        (Kind::Float { .. }, toml::Value::Integer(i)) => Value::Float(*i as f64),
        (Kind::Float { .. }, _) => return Err(wrong(path, "a number", v)),
        (Kind::Bool, toml::Value::Boolean(b)) => Value::Bool(*b),
        (Kind::Bool, _) => return Err(wrong(path, "true or false", v)),
        (Kind::IntList { .. }, _) => Value::IntList(
            items("a list of integers")?
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.as_integer()
                        .ok_or_else(|| wrong(&format!("{path}[{i}]"), "an integer", x))
                })
                .collect::<Result<_, _>>()?,
        ),
        (Kind::NameList { .. }, _) => Value::NameList(
            items("a list of names")?
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| wrong(&format!("{path}[{i}]"), "a string", x))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// The path of a list's first bad entry, so errors point at `stem[1]`.
fn element_path(path: &str, kind: Kind, v: &Value) -> String {
    let bad = match (kind, v) {
        (Kind::IntList { max }, Value::IntList(items)) => items
            .iter()
            .position(|i| Kind::int_error(1, max, *i).is_some()),
        (Kind::NameList { what, names }, Value::NameList(items)) => items
            .iter()
            .position(|s| Kind::name_error(what, names, s).is_some()),
        _ => None,
    };
    bad.map_or(path.to_string(), |i| format!("{path}[{i}]"))
}

/// Checks one TOML value for key `def` at `path`.
pub fn typed(path: &str, def: &KeyDef, v: &toml::Value) -> Result<Value, SweepError> {
    let value = shape(path, def.kind, v)?;
    match def.kind.check(&value) {
        Some(reason) => Err(SweepError::key(
            element_path(path, def.kind, &value),
            reason,
        )),
        None => Ok(value),
    }
}

/// Whether a key's values are lists, so that a grid over it is a list of lists.
pub fn is_list(def: &KeyDef) -> bool {
    def.kind.is_list()
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
        assert!(e.starts_with("base.model: unknown model 'alexnet'"), "{e}");
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
