//! The trial's keys as `vovd train` flags, one per key of the registry in
//! `vov-spec` (`batch_size` is `--batch-size`), with its help, type and default.
//! Only keys given on the command line are applied, so a resumed run keeps the
//! checkpoint's values for the rest.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use vov_spec::{KeyDef, Kind, Preset, TrialSpec, Value, KEYS};

use super::CliError;

/// The keys given on the command line, with their checked values.
#[derive(Debug, Clone, Default)]
pub struct KeyArgs {
    given: Vec<(&'static KeyDef, Value)>,
}

/// The keys that are training flags (placement keys such as `device` are not:
/// `vovd train --device` names the device itself).
fn flag_keys() -> impl Iterator<Item = &'static KeyDef> {
    KEYS.iter().filter(|k| !k.placement)
}

fn value_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Name { .. } => "NAME",
        Kind::Int { .. } => "N",
        Kind::Float { .. } => "X",
        Kind::Bool => "BOOL",
        Kind::IntList { .. } | Kind::NameList { .. } => "LIST",
    }
}

fn help(k: &KeyDef) -> String {
    let default = match (k.required, k.default_value()) {
        (true, _) => "required unless resuming".to_string(),
        (false, Some(v)) => v.to_string(),
        (false, None) => "unset".to_string(),
    };
    let unit = if k.unit.is_empty() {
        String::new()
    } else {
        format!(", in {}", k.unit)
    };
    format!(
        "{}{unit}: {} [default: {default}]",
        k.help,
        k.kind.describe()
    )
}

fn arg(k: &'static KeyDef) -> Arg {
    let a = Arg::new(k.name).long(k.flag()).help(help(k));
    let a = match k.kind {
        Kind::Bool => a.action(ArgAction::SetTrue),
        kind => a
            .action(ArgAction::Set)
            .value_name(value_name(kind))
            .value_parser(move |s: &str| kind.parse_text(s)),
    };
    if k.family.is_some() {
        a.help_heading("Model knobs")
    } else {
        a
    }
}

impl KeyArgs {
    /// The model given, if any.
    pub fn model(&self) -> Option<Preset> {
        self.given.iter().find_map(|(k, v)| match v {
            Value::Name(name) if k.name == "model" => name.parse().ok(),
            _ => None,
        })
    }

    /// Writes every given key into `spec`; an error names the flag.
    pub fn apply(&self, spec: &mut TrialSpec) -> Result<(), CliError> {
        for (k, v) in &self.given {
            k.apply(spec, v)
                .map_err(|e| CliError::Usage(format!("invalid value for --{}: {e}", k.flag())))?;
        }
        Ok(())
    }
}

impl Args for KeyArgs {
    fn augment_args(cmd: Command) -> Command {
        flag_keys().fold(cmd, |c, k| c.arg(arg(k)))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for KeyArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = Vec::new();
        for k in flag_keys() {
            if m.value_source(k.name) != Some(ValueSource::CommandLine) {
                continue;
            }
            let v = match k.kind {
                Kind::Bool => Value::Bool(m.get_flag(k.name)),
                _ => match m.get_one::<Value>(k.name) {
                    Some(v) => v.clone(),
                    None => continue,
                },
            };
            given.push((k, v));
        }
        Ok(KeyArgs { given })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}
