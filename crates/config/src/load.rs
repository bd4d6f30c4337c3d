//! Layered loading and validation of [`Config`].
//!
//! Four figment layers, lowest first: built-in defaults ([`crate::defaults`]),
//! TOML files (an explicit `--config` / `SPACEPOS_CONFIG` file and/or the
//! optional `<data-dir>/spacepos.toml`), `SPACEPOS_*` environment variables and
//! the [`TerminalRecord`] (values the ERP set). Figment merges them and tags
//! every value with the layer it came from; this module then reads each known
//! key, checks it, and collects *every* problem before failing, so an operator
//! fixes a config file in one go. Each [`Problem`] names the field, where the
//! value came from (file and line, environment variable, or `terminal.json`) and
//! what is allowed. Secrets never appear in a message.
//!
//! The key list, units and ranges are documented in `docs/configuration.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use figment::value::{Dict, Empty, Map, Num, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use spacepos_core::endpoint::{EndpointKind, check_transport};
use spacepos_core::{DeviceCredentials, RedactedUrl, Secret};
use toml_edit::{ImDocument, TableLike};
use url::Url;

use crate::{
    CompanyInformation, Config, Features, NodeConfig, SimulatorConfig, SpaceFuelConfig, SyncConfig,
    TerminalConfig, TerminalRecord, UpdatesConfig, defaults,
};

/// Environment variables with the `SPACEPOS_` prefix that are not configuration
/// keys (they are read by the apps directly) and are therefore ignored here.
pub const NON_CONFIG_ENV_VARS: &[&str] = &["SPACEPOS_CONFIG", "SPACEPOS_DATA_DIR", "SPACEPOS_LOG"];

const ENV_PREFIX: &str = "SPACEPOS_";
const HIDDEN: &str = "***";

// ---------------------------------------------------------------------------
// The schema: every key, its type and its allowed values.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    /// A whole number in `min..=max`; `unit` ends the range message ("seconds").
    Int {
        min: i64,
        max: i64,
        unit: &'static str,
    },
    Str,
    Secret,
    Url(EndpointKind),
    /// minisign public keys.
    Keys,
}

#[derive(Debug, Clone, Copy)]
struct Key {
    path: &'static str,
    kind: Kind,
}

const fn key(path: &'static str, kind: Kind) -> Key {
    Key { path, kind }
}

const SECONDS_1_DAY: Kind = Kind::Int {
    min: 1,
    max: 86_400,
    unit: " seconds",
};
const MINUTES_1_DAY: Kind = Kind::Int {
    min: 1,
    max: 1_440,
    unit: " minutes",
};
const NUMBER_U32: Kind = Kind::Int {
    min: 0,
    max: u32::MAX as i64,
    unit: "",
};
const PRESENCE: Kind = Kind::Int {
    min: *defaults::PRESENCE_INTERVAL_RANGE.start() as i64,
    max: *defaults::PRESENCE_INTERVAL_RANGE.end() as i64,
    unit: " seconds",
};

/// Every configuration key, in the order `config show` lists them.
const KEYS: &[Key] = &[
    key("node.api_endpoint", Kind::Url(EndpointKind::Http)),
    key("node.amqp_url", Kind::Url(EndpointKind::Amqp)),
    key("node.exchange", Kind::Str),
    key("node.features.till", Kind::Bool),
    key("node.features.spacefuel", Kind::Bool),
    key("terminal.onboarding_code", Kind::Str),
    key("terminal.client_id", Kind::Str),
    key("terminal.client_secret", Kind::Secret),
    key("terminal.store_number", NUMBER_U32),
    key("terminal.terminal_number", NUMBER_U32),
    key("terminal.report_presence", Kind::Bool),
    key("terminal.presence_interval_seconds", PRESENCE),
    key("terminal.company_information.name", Kind::Str),
    key("terminal.company_information.vat_number", Kind::Str),
    key("terminal.company_information.address", Kind::Str),
    key("terminal.company_information.currency", Kind::Str),
    key("terminal.company_information.time_zone", Kind::Str),
    key("sync.ingest_enabled", Kind::Bool),
    key("sync.send_enabled", Kind::Bool),
    key("sync.ingest_frequency", SECONDS_1_DAY),
    key("sync.send_frequency", SECONDS_1_DAY),
    key("sync.data_sync_retry_interval_minutes", MINUTES_1_DAY),
    key(
        "updates.check_interval_seconds",
        Kind::Int {
            min: 60,
            max: 604_800,
            unit: " seconds",
        },
    ),
    key("updates.snooze_minutes", MINUTES_1_DAY),
    key(
        "updates.max_snoozes",
        Kind::Int {
            min: 0,
            max: 10,
            unit: "",
        },
    ),
    key("updates.trusted_keys", Kind::Keys),
    key(
        "spacefuel.health_grace_seconds",
        Kind::Int {
            min: 1,
            max: 3_600,
            unit: " seconds",
        },
    ),
    key("spacefuel.auto_authorise", Kind::Bool),
    key("spacefuel.auto_settle", Kind::Bool),
    key(
        "spacefuel.simulator.pumps",
        Kind::Int {
            min: 1,
            max: 64,
            unit: " pumps",
        },
    ),
    key(
        "spacefuel.simulator.flow_ml_per_second",
        Kind::Int {
            min: 1,
            max: 1_000_000,
            unit: " ml/s",
        },
    ),
    key(
        "spacefuel.simulator.customers_per_pump",
        Kind::Int {
            min: 0,
            max: 100_000_000,
            unit: "",
        },
    ),
    key(
        "spacefuel.simulator.arrival_gap_ms",
        Kind::Int {
            min: 0,
            max: 3_600_000,
            unit: " ms",
        },
    ),
];

/// The sections (tables) that hold keys.
const TABLES: &[&str] = &[
    "node",
    "node.features",
    "terminal",
    "terminal.company_information",
    "sync",
    "updates",
    "spacefuel",
    "spacefuel.simulator",
];

fn spec(path: &str) -> Option<Key> {
    KEYS.iter().copied().find(|k| k.path == path)
}

/// `sync.send_frequency` -> `SPACEPOS_SYNC__SEND_FREQUENCY`.
fn env_name(path: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        path.replace('.', "__").to_ascii_uppercase()
    )
}

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// Where the effective value of a key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The built-in default ([`crate::defaults`]), or unset.
    Default,
    /// A TOML file; `line` is where the key is written (1-based).
    File { path: PathBuf, line: Option<usize> },
    /// A `SPACEPOS_*` environment variable.
    Env { var: String },
    /// `terminal.json`: a value the ERP set (at onboarding or later).
    Erp,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Default => f.write_str("built-in default"),
            ConfigSource::File {
                path,
                line: Some(line),
            } => write!(f, "{} line {line}", path.display()),
            ConfigSource::File { path, line: None } => write!(f, "{}", path.display()),
            ConfigSource::Env { var } => write!(f, "environment variable {var}"),
            ConfigSource::Erp => f.write_str("terminal.json (set by the ERP)"),
        }
    }
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key, e.g. `sync.send_frequency` (`updates.trusted_keys[1]` for a list item).
    pub field: String,
    /// Where the offending value came from.
    pub source: ConfigSource,
    /// What is wrong and what is allowed.
    pub message: String,
    /// The offending value as it may be shown (secrets as `***`, URL passwords
    /// redacted); `None` when there is no value to show (an unknown key).
    pub value: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(
                f,
                "{} = {value} ({}): {}",
                self.field, self.source, self.message
            ),
            None => write!(f, "{} ({}): {}", self.field, self.source, self.message),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file could not be read.
    #[error("cannot read config file {}: {detail}", .path.display())]
    Unreadable { path: PathBuf, detail: String },
    /// A config file is not valid TOML.
    #[error("config file {} line {line} is not valid TOML: {detail}", .path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    /// A config file holds `terminal.client_secret` but other users may read it.
    #[error(
        "config file {path} holds terminal.client_secret but other users can read it (mode {mode:03o}): \
         run `chmod 600 {path}`",
        path = .path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    /// Values are unknown, of the wrong type or out of range; all of them listed.
    #[error("{}", format_problems(.0))]
    Invalid(Vec<Problem>),
}

fn format_problems(problems: &[Problem]) -> String {
    let mut out = match problems.len() {
        1 => "invalid configuration (1 problem):".to_owned(),
        n => format!("invalid configuration ({n} problems):"),
    };
    for p in problems {
        out.push_str("\n  - ");
        out.push_str(&p.to_string());
    }
    out
}

// ---------------------------------------------------------------------------
// The loader
// ---------------------------------------------------------------------------

/// Builds a [`Config`] from defaults, TOML files, the environment and the
/// ERP-set [`TerminalRecord`], in that order of precedence (last wins).
///
/// ```no_run
/// # use spacepos_config::ConfigLoader;
/// let config = ConfigLoader::new()
///     .optional_file("/var/lib/spacepos/spacepos.toml")
///     .env(std::env::vars())
///     .load()?;
/// # Ok::<(), spacepos_config::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct ConfigLoader {
    files: Vec<(PathBuf, bool)>,
    /// Only the `SPACEPOS_*` variables are kept.
    env: Vec<(String, String)>,
    record: Option<TerminalRecord>,
}

impl fmt::Debug for ConfigLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: show only the names.
        f.debug_struct("ConfigLoader")
            .field("files", &self.files)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("terminal_record", &self.record.is_some())
            .finish()
    }
}

impl ConfigLoader {
    pub fn new() -> Self {
        Self::default()
    }

    /// A config file that must exist (given with `--config` or `SPACEPOS_CONFIG`).
    /// Files added later win over files added earlier.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push((path.into(), true));
        self
    }

    /// A config file used only if it exists (e.g. `<data-dir>/spacepos.toml`).
    pub fn optional_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.push((path.into(), false));
        self
    }

    /// Environment variables; pass `std::env::vars()` (or, to survive a
    /// non-UTF-8 variable elsewhere in the environment, which makes `vars()`
    /// panic, `std::env::vars_os()` filtered to the valid ones). Only
    /// `SPACEPOS_*` names (any case) are looked at; the rest are dropped at once.
    pub fn env<I: IntoIterator<Item = (String, String)>>(mut self, vars: I) -> Self {
        self.env
            .extend(vars.into_iter().filter(|(k, _)| is_spacepos_var(k)));
        self
    }

    /// The values the ERP set, the top layer.
    pub fn terminal_record(mut self, record: Option<&TerminalRecord>) -> Self {
        self.record = record.cloned();
        self
    }

    /// Load and validate.
    pub fn load(&self) -> Result<Config, ConfigError> {
        self.load_with_sources().map(|(config, _)| config)
    }

    /// Load and validate, and say for every key (`sync.send_frequency`) where
    /// its effective value came from.
    pub fn load_with_sources(
        &self,
    ) -> Result<(Config, BTreeMap<String, ConfigSource>), ConfigError> {
        let mut problems = Vec::new();
        let mut figment = Figment::new().merge(Layer::new(LayerKind::Default, defaults_dict()));
        let mut file_lines = BTreeMap::new();
        for (path, required) in &self.files {
            let Some(file) = read_file(path, *required)? else {
                continue;
            };
            problems.extend(file.problems);
            file_lines.insert(path.clone(), file.lines);
            figment = figment.merge(Layer::new(LayerKind::File(path.clone()), file.dict));
        }
        let env = env_layer(&self.env);
        problems.extend(env.problems);
        figment = figment.merge(Layer::new(LayerKind::Env, env.dict));
        if let Some(record) = &self.record {
            figment = figment.merge(Layer::new(LayerKind::Erp, erp_dict(record)));
        }

        let mut reader = Reader {
            figment: &figment,
            file_lines: &file_lines,
            env_vars: &env.vars,
            problems,
            sources: BTreeMap::new(),
        };
        let config = reader.build();
        if reader.problems.is_empty() {
            Ok((config, reader.sources))
        } else {
            Err(ConfigError::Invalid(reader.problems))
        }
    }
}

fn is_spacepos_var(name: &str) -> bool {
    name.get(..ENV_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
}

// ---------------------------------------------------------------------------
// Layers as figment providers
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum LayerKind {
    Default,
    File(PathBuf),
    Env,
    Erp,
}

const SOURCE_DEFAULT: &str = "spacepos:default";
const SOURCE_ENV: &str = "spacepos:env";
const SOURCE_ERP: &str = "spacepos:erp";

/// One configuration layer: a dictionary plus metadata that says which layer
/// it is, so that every merged value can be traced back to it. No `Debug`:
/// the dictionary may hold secrets.
struct Layer {
    kind: LayerKind,
    dict: Dict,
}

impl Layer {
    fn new(kind: LayerKind, dict: Dict) -> Self {
        Layer { kind, dict }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        match &self.kind {
            LayerKind::Default => {
                Metadata::from("built-in defaults", Source::Custom(SOURCE_DEFAULT.into()))
            }
            LayerKind::File(path) => Metadata::from("TOML file", Source::File(path.clone())),
            LayerKind::Env => {
                Metadata::from("SPACEPOS_* environment", Source::Custom(SOURCE_ENV.into()))
            }
            LayerKind::Erp => Metadata::from(
                "terminal.json (set by the ERP)",
                Source::Custom(SOURCE_ERP.into()),
            ),
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}

/// Insert `value` at the dotted `path`, creating intermediate dictionaries.
fn insert_path(dict: &mut Dict, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            dict.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Keys whose default is derived from other keys when unset, so they have no
/// value in the defaults layer: `spacefuel.auto_settle` follows
/// `node.features.till` (true where no till runs).
const DERIVED_DEFAULTS: [&str; 1] = ["spacefuel.auto_settle"];

fn defaults_dict() -> Dict {
    let mut dict = Dict::new();
    for (path, value) in flat_values(&Config::default(), Show::Exposed) {
        if DERIVED_DEFAULTS.contains(&path) {
            continue;
        }
        if let Some(value) = json_to_figment(&value) {
            insert_path(&mut dict, path, value);
        }
    }
    dict
}

fn json_to_figment(value: &serde_json::Value) -> Option<Value> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(Value::from(*b)),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from)),
        serde_json::Value::String(s) => Some(Value::from(s.clone())),
        serde_json::Value::Array(items) => Some(Value::from(
            items.iter().filter_map(json_to_figment).collect::<Vec<_>>(),
        )),
        serde_json::Value::Object(_) => None,
    }
}

/// The ERP layer. Its company information replaces the lower layers' as a
/// whole (the ERP is the authority on it); other fields are set only when the
/// ERP set them. The presence interval is clamped (contract section 7).
fn erp_dict(record: &TerminalRecord) -> Dict {
    let mut dict = Dict::new();
    let mut put = |path: &str, value: Value| insert_path(&mut dict, path, value);
    put("terminal.client_id", Value::from(record.client_id.clone()));
    put(
        "terminal.client_secret",
        Value::from(record.client_secret.expose().to_owned()),
    );
    put("terminal.store_number", Value::from(record.store_number));
    put(
        "terminal.terminal_number",
        Value::from(record.terminal_number),
    );
    if let Some(url) = &record.api_endpoint {
        put("node.api_endpoint", Value::from(url.as_str().to_owned()));
    }
    if let Some(url) = &record.amqp_url {
        put(
            "node.amqp_url",
            Value::from(url.expose().as_str().to_owned()),
        );
    }
    if let Some(report) = record.report_presence {
        put("terminal.report_presence", Value::from(report));
    }
    if let Some(seconds) = record.presence_interval_seconds {
        let range = defaults::PRESENCE_INTERVAL_RANGE;
        let clamped = seconds.clamp(*range.start(), *range.end());
        if clamped != seconds {
            tracing::info!(
                "the ERP set presence_interval_seconds = {seconds}; using {clamped} (allowed {}..={})",
                range.start(),
                range.end()
            );
        }
        put("terminal.presence_interval_seconds", Value::from(clamped));
    }
    if let Some(company) = &record.company_information {
        let fields = [
            ("name", &company.name),
            ("vat_number", &company.vat_number),
            ("address", &company.address),
            ("currency", &company.currency),
            ("time_zone", &company.time_zone),
        ];
        for (name, field) in fields {
            let value = match field {
                Some(text) => Value::from(text.clone()),
                None => Value::Empty(Tag::Default, Empty::None),
            };
            put(&format!("terminal.company_information.{name}"), value);
        }
    }
    dict
}

// --- the environment -------------------------------------------------------

struct EnvLayer {
    dict: Dict,
    /// key path -> the variable that set it.
    vars: BTreeMap<String, String>,
    problems: Vec<Problem>,
}

/// Map `SPACEPOS_SECTION__KEY` variables to keys. Values stay strings here:
/// the reader converts them by the key's type (so a numeric onboarding code
/// or secret stays text).
fn env_layer(vars: &[(String, String)]) -> EnvLayer {
    let mut layer = EnvLayer {
        dict: Dict::new(),
        vars: BTreeMap::new(),
        problems: Vec::new(),
    };
    for (name, value) in vars {
        if NON_CONFIG_ENV_VARS
            .iter()
            .any(|v| v.eq_ignore_ascii_case(name))
        {
            continue;
        }
        let rest = name.get(ENV_PREFIX.len()..).unwrap_or_default();
        let path = rest
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        let source = ConfigSource::Env { var: name.clone() };
        if spec(&path).is_some() {
            insert_path(&mut layer.dict, &path, Value::from(value.clone()));
            layer.vars.insert(path, name.clone());
        } else if TABLES.contains(&path.as_str()) {
            layer.problems.push(Problem {
                field: path.clone(),
                source,
                message: format!(
                    "is a section, not a setting: set its keys one by one, e.g. {}",
                    KEYS.iter()
                        .find(|k| k.path.starts_with(&format!("{path}.")))
                        .map(|k| env_name(k.path))
                        .unwrap_or_default()
                ),
                value: None,
            });
        } else {
            let hint = match suggest(&path) {
                Some(known) => format!("did you mean {}?", env_name(known)),
                None => "see docs/configuration.md for the variables SpacePOS reads".to_owned(),
            };
            layer.problems.push(Problem {
                field: path,
                source,
                message: format!(
                    "unknown setting: {name} is not a SpacePOS configuration variable (nested keys are \
                     separated by a double underscore `__`); {hint}"
                ),
                value: None,
            });
        }
    }
    layer
}

// --- TOML files --------------------------------------------------------------

struct FileLayer {
    dict: Dict,
    /// key path (and `key[i]` for list items) -> 1-based line.
    lines: BTreeMap<String, usize>,
    problems: Vec<Problem>,
}

fn read_file(path: &Path, required: bool) -> Result<Option<FileLayer>, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => {
            let detail = match e.kind() {
                io::ErrorKind::NotFound => {
                    "no such file; check the path given with --config or SPACEPOS_CONFIG".to_owned()
                }
                io::ErrorKind::PermissionDenied => {
                    format!("permission denied ({e}); run SpacePOS as a user that may read it")
                }
                _ => e.to_string(),
            };
            return Err(ConfigError::Unreadable {
                path: path.to_owned(),
                detail,
            });
        }
    };
    let text = String::from_utf8(bytes).map_err(|e| ConfigError::Unreadable {
        path: path.to_owned(),
        detail: format!(
            "not UTF-8 text (invalid byte at offset {}); save the file as UTF-8",
            e.utf8_error().valid_up_to()
        ),
    })?;
    let doc = ImDocument::parse(text.as_str()).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        line: e.span().map_or(1, |span| line_of(&text, span.start)),
        // The message only, never the offending line: it may hold a secret.
        detail: e.message().trim().replace('\n', "; "),
    })?;
    check_permissions(path, doc.as_table())?;

    let mut layer = FileLayer {
        dict: Dict::new(),
        lines: BTreeMap::new(),
        problems: Vec::new(),
    };
    walk_table(path, &text, doc.as_table(), "", &mut layer);
    Ok(Some(layer))
}

/// A file that holds the client secret must be readable by its owner only.
#[cfg(unix)]
fn check_permissions(path: &Path, root: &dyn TableLike) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt as _;
    let has_secret = root
        .get("terminal")
        .and_then(|t| t.as_table_like())
        .is_some_and(|t| t.contains_key("client_secret"));
    if !has_secret {
        return Ok(());
    }
    let mode = std::fs::metadata(path)
        .map_err(|e| ConfigError::Unreadable {
            path: path.to_owned(),
            detail: e.to_string(),
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _root: &dyn TableLike) -> Result<(), ConfigError> {
    Ok(())
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Record the known keys (value and line) of a TOML table; report unknown ones.
fn walk_table(path: &Path, text: &str, table: &dyn TableLike, prefix: &str, out: &mut FileLayer) {
    for (name, item) in table.iter() {
        let full = join(prefix, name);
        let line = table
            .get_key_value(name)
            .and_then(|(k, _)| k.span())
            .or_else(|| item.span())
            .map(|span| line_of(text, span.start));
        let source = ConfigSource::File {
            path: path.to_owned(),
            line,
        };
        if TABLES.contains(&full.as_str()) {
            match item.as_table_like() {
                Some(inner) => walk_table(path, text, inner, &full, out),
                None => out.problems.push(Problem {
                    field: full.clone(),
                    source,
                    message: format!("must be a table (a `[{full}]` section), not a single value"),
                    value: None,
                }),
            }
        } else if spec(&full).is_some() {
            if let Some(line) = line {
                out.lines.insert(full.clone(), line);
            }
            if let Some(items) = item.as_array() {
                for (i, element) in items.iter().enumerate() {
                    if let Some(span) = element.span() {
                        out.lines
                            .insert(format!("{full}[{i}]"), line_of(text, span.start));
                    }
                }
            }
            if let Some(value) = toml_item_to_figment(item) {
                insert_path(&mut out.dict, &full, value);
            }
        } else {
            let hint = match suggest(&full) {
                Some(known) => format!("did you mean `{known}`?"),
                None if prefix.is_empty() => {
                    format!(
                        "the sections are {}",
                        TABLES
                            .iter()
                            .filter(|t| !t.contains('.'))
                            .map(|t| format!("[{t}]"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
                None => "see docs/configuration.md for the keys SpacePOS reads".to_owned(),
            };
            out.problems.push(Problem {
                field: full,
                source,
                message: format!("unknown key: remove it or fix its name; {hint}"),
                value: None,
            });
        }
    }
}

fn toml_item_to_figment(item: &toml_edit::Item) -> Option<Value> {
    match item {
        toml_edit::Item::None => None,
        toml_edit::Item::Value(value) => Some(toml_value_to_figment(value)),
        toml_edit::Item::Table(table) => Some(Value::from(
            table
                .iter()
                .filter_map(|(k, v)| Some((k.to_owned(), toml_item_to_figment(v)?)))
                .collect::<Dict>(),
        )),
        toml_edit::Item::ArrayOfTables(tables) => Some(Value::from(
            tables
                .iter()
                .map(|t| {
                    Value::from(
                        t.iter()
                            .filter_map(|(k, v)| Some((k.to_owned(), toml_item_to_figment(v)?)))
                            .collect::<Dict>(),
                    )
                })
                .collect::<Vec<_>>(),
        )),
    }
}

fn toml_value_to_figment(value: &toml_edit::Value) -> Value {
    match value {
        toml_edit::Value::String(s) => Value::from(s.value().clone()),
        toml_edit::Value::Integer(i) => Value::from(*i.value()),
        toml_edit::Value::Float(f) => Value::from(*f.value()),
        toml_edit::Value::Boolean(b) => Value::from(*b.value()),
        // No key takes a date; keep it as text so the type check names it.
        toml_edit::Value::Datetime(d) => Value::from(d.value().to_string()),
        toml_edit::Value::Array(items) => {
            Value::from(items.iter().map(toml_value_to_figment).collect::<Vec<_>>())
        }
        toml_edit::Value::InlineTable(table) => Value::from(
            table
                .iter()
                .map(|(k, v)| (k.to_owned(), toml_value_to_figment(v)))
                .collect::<Dict>(),
        ),
    }
}

/// A known key close to `path` (a typo, or `_` where `__` was meant).
fn suggest(path: &str) -> Option<&'static str> {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '.')
            .collect::<String>()
    };
    let wanted = squash(path);
    KEYS.iter()
        .map(|k| k.path)
        .find(|k| squash(k) == wanted)
        .or_else(|| {
            KEYS.iter()
                .map(|k| k.path)
                .filter(|k| edit_distance(k, path) <= 2)
                .min_by_key(|k| edit_distance(k, path))
        })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

// ---------------------------------------------------------------------------
// Reading and checking the merged values
// ---------------------------------------------------------------------------

struct Reader<'a> {
    figment: &'a Figment,
    file_lines: &'a BTreeMap<PathBuf, BTreeMap<String, usize>>,
    env_vars: &'a BTreeMap<String, String>,
    problems: Vec<Problem>,
    sources: BTreeMap<String, ConfigSource>,
}

/// A scalar read from a layer, before its type is checked.
struct Found {
    value: Value,
    source: ConfigSource,
}

impl Reader<'_> {
    fn build(&mut self) -> Config {
        let d = Config::default();
        let api_endpoint = self.url("node.api_endpoint");
        let amqp_url = self.url("node.amqp_url").map(RedactedUrl::new);
        let exchange = self.string("node.exchange").unwrap_or(d.node.exchange);
        let features = Features {
            till: self
                .bool("node.features.till")
                .unwrap_or(d.node.features.till),
            spacefuel: self
                .bool("node.features.spacefuel")
                .unwrap_or(d.node.features.spacefuel),
        };

        let onboarding_code = self.string("terminal.onboarding_code");
        let credentials = self.credentials();
        let store_number = self
            .int("terminal.store_number")
            .and_then(|v| u32::try_from(v).ok());
        let terminal_number = self
            .int("terminal.terminal_number")
            .and_then(|v| u32::try_from(v).ok());
        let report_presence = self
            .bool("terminal.report_presence")
            .unwrap_or(d.terminal.report_presence);
        let presence_interval_seconds = self
            .int("terminal.presence_interval_seconds")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(d.terminal.presence_interval_seconds);
        let company = CompanyInformation {
            name: self.string("terminal.company_information.name"),
            vat_number: self.string("terminal.company_information.vat_number"),
            address: self.string("terminal.company_information.address"),
            currency: self.string("terminal.company_information.currency"),
            time_zone: self.string("terminal.company_information.time_zone"),
        };
        let company_information = (company != CompanyInformation::default()).then_some(company);

        let seconds = |v: Option<i64>, default: Duration| {
            v.and_then(|v| u64::try_from(v).ok())
                .map_or(default, Duration::from_secs)
        };
        let minutes = |v: Option<i64>, default: Duration| {
            v.and_then(|v| u64::try_from(v).ok())
                .map_or(default, |m| Duration::from_secs(m * 60))
        };
        let sync = SyncConfig {
            ingest_enabled: self
                .bool("sync.ingest_enabled")
                .unwrap_or(d.sync.ingest_enabled),
            send_enabled: self
                .bool("sync.send_enabled")
                .unwrap_or(d.sync.send_enabled),
            ingest_frequency: seconds(self.int("sync.ingest_frequency"), d.sync.ingest_frequency),
            send_frequency: seconds(self.int("sync.send_frequency"), d.sync.send_frequency),
            retry_interval: minutes(
                self.int("sync.data_sync_retry_interval_minutes"),
                d.sync.retry_interval,
            ),
        };
        let updates = UpdatesConfig {
            check_interval: seconds(
                self.int("updates.check_interval_seconds"),
                d.updates.check_interval,
            ),
            snooze: minutes(self.int("updates.snooze_minutes"), d.updates.snooze),
            max_snoozes: self
                .int("updates.max_snoozes")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(d.updates.max_snoozes),
            trusted_keys: self.keys("updates.trusted_keys"),
        };
        let ds = &d.spacefuel;
        let spacefuel = SpaceFuelConfig {
            health_grace: seconds(self.int("spacefuel.health_grace_seconds"), ds.health_grace),
            auto_authorise: self
                .bool("spacefuel.auto_authorise")
                .unwrap_or(ds.auto_authorise),
            auto_settle: self.bool("spacefuel.auto_settle").unwrap_or(!features.till),
            simulator: SimulatorConfig {
                pumps: self
                    .int("spacefuel.simulator.pumps")
                    .and_then(|v| u8::try_from(v).ok())
                    .unwrap_or(ds.simulator.pumps),
                flow_ml_per_second: self
                    .int("spacefuel.simulator.flow_ml_per_second")
                    .and_then(|v| u64::try_from(v).ok())
                    .unwrap_or(ds.simulator.flow_ml_per_second),
                customers_per_pump: self
                    .int("spacefuel.simulator.customers_per_pump")
                    .and_then(|v| u64::try_from(v).ok())
                    .unwrap_or(ds.simulator.customers_per_pump),
                arrival_gap_ms: self
                    .int("spacefuel.simulator.arrival_gap_ms")
                    .and_then(|v| u64::try_from(v).ok())
                    .unwrap_or(ds.simulator.arrival_gap_ms),
            },
        };

        Config {
            node: NodeConfig {
                api_endpoint,
                amqp_url,
                exchange,
                features,
            },
            terminal: TerminalConfig {
                onboarding_code,
                credentials,
                store_number,
                terminal_number,
                company_information,
                report_presence,
                presence_interval_seconds,
            },
            sync,
            updates,
            spacefuel,
        }
    }

    /// The merged value of `path` and its source; records the source. `None`
    /// when no layer sets it.
    fn find(&mut self, path: &str) -> Option<Found> {
        let value = self.figment.find_value(path).ok();
        let source = match &value {
            Some(value) => self.source_of(path, value),
            None => ConfigSource::Default,
        };
        self.sources.insert(path.to_owned(), source.clone());
        match value {
            None | Some(Value::Empty(..)) => None,
            Some(value) => Some(Found { value, source }),
        }
    }

    fn source_of(&self, path: &str, value: &Value) -> ConfigSource {
        let metadata = self.figment.get_metadata(value.tag());
        match metadata.and_then(|m| m.source.as_ref()) {
            Some(Source::File(file)) => ConfigSource::File {
                path: file.clone(),
                line: self
                    .file_lines
                    .get(file)
                    .and_then(|lines| lines.get(path))
                    .copied(),
            },
            Some(Source::Custom(kind)) if kind == SOURCE_ENV => ConfigSource::Env {
                var: self
                    .env_vars
                    .get(path)
                    .cloned()
                    .unwrap_or_else(|| env_name(path)),
            },
            Some(Source::Custom(kind)) if kind == SOURCE_ERP => ConfigSource::Erp,
            _ => ConfigSource::Default,
        }
    }

    fn problem(&mut self, path: &str, found: &Found, message: impl Into<String>) {
        let mut message = message.into();
        if found.source == ConfigSource::Erp {
            message.push_str(
                "; the ERP set this value: have it corrected at the ERP, then onboard again with \
                 `spacepos onboard --code <code> --force`",
            );
        }
        self.problems.push(Problem {
            field: path.to_owned(),
            source: found.source.clone(),
            message,
            value: Some(show_value(path, &found.value)),
        });
    }

    fn from_env(found: &Found) -> bool {
        matches!(found.source, ConfigSource::Env { .. })
    }

    fn bool(&mut self, path: &str) -> Option<bool> {
        let found = self.find(path)?;
        let parsed = match &found.value {
            Value::Bool(_, b) => Some(*b),
            Value::String(_, s) if Self::from_env(&found) => {
                match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" | "1" => Some(true),
                    "false" | "no" | "off" | "0" => Some(false),
                    _ => None,
                }
            }
            _ => None,
        };
        if parsed.is_none() {
            let allowed = if Self::from_env(&found) {
                "`true` or `false`"
            } else {
                "true or false (without quotes)"
            };
            let message = format!("must be {allowed}{}", found_type(&found.value));
            self.problem(path, &found, message);
        }
        parsed
    }

    fn int(&mut self, path: &str) -> Option<i64> {
        let Some(Kind::Int { min, max, unit }) = spec(path).map(|k| k.kind) else {
            return None;
        };
        let found = self.find(path)?;
        let number = match &found.value {
            Value::Num(_, num) => num_to_i128(*num),
            Value::String(_, s) if Self::from_env(&found) => s.trim().parse::<i128>().ok(),
            _ => None,
        };
        let message = match number {
            Some(n) if (i128::from(min)..=i128::from(max)).contains(&n) => {
                return i64::try_from(n).ok();
            }
            Some(_) => format!("must be between {min} and {max}{unit}"),
            None => format!(
                "must be a whole number between {min} and {max}{unit}{}",
                found_type(&found.value)
            ),
        };
        self.problem(path, &found, message);
        None
    }

    fn string(&mut self, path: &str) -> Option<String> {
        let found = self.find(path)?;
        match &found.value {
            Value::String(_, s) if s.trim().is_empty() => {
                self.problem(
                    path,
                    &found,
                    "must not be empty: remove the setting to leave it unset",
                );
                None
            }
            Value::String(_, s) => Some(s.clone()),
            other => {
                let message = format!("must be text in quotes{}", found_type(other));
                self.problem(path, &found, message);
                None
            }
        }
    }

    fn url(&mut self, path: &str) -> Option<Url> {
        let Some(Kind::Url(kind)) = spec(path).map(|k| k.kind) else {
            return None;
        };
        let found = self.find(path)?;
        let example = match kind {
            EndpointKind::Http => "\"https://erp.example.com\"",
            EndpointKind::Amqp => "\"amqps://user:password@mq.example.com:5671/vhost\"",
        };
        let Value::String(_, text) = &found.value else {
            let message = format!(
                "must be a URL in quotes such as {example}{}",
                found_type(&found.value)
            );
            self.problem(path, &found, message);
            return None;
        };
        let url = match Url::parse(text.trim()) {
            Ok(url) => url,
            Err(e) => {
                self.problem(
                    path,
                    &found,
                    format!("is not a valid URL ({e}): write it like {example}"),
                );
                return None;
            }
        };
        if let Err(e) = check_transport(&url, kind) {
            self.problem(path, &found, e.to_string());
            return None;
        }
        Some(url)
    }

    fn keys(&mut self, path: &str) -> Vec<String> {
        let Some(found) = self.find(path) else {
            return Vec::new();
        };
        let items: Vec<(usize, Value)> = match &found.value {
            Value::Array(_, items) => items.iter().cloned().enumerate().collect(),
            Value::String(_, text) if Self::from_env(&found) => split_env_list(text)
                .into_iter()
                .enumerate()
                .map(|(i, s)| (i, Value::from(s)))
                .collect(),
            other => {
                let message = format!(
                    "must be a list of minisign public keys, e.g. [\"RWQ...\"]{}",
                    found_type(other)
                );
                self.problem(path, &found, message);
                return Vec::new();
            }
        };
        let mut keys = Vec::new();
        for (i, item) in items {
            let field = format!("{path}[{i}]");
            let source = match &found.source {
                ConfigSource::File { path: file, line } => ConfigSource::File {
                    path: file.clone(),
                    line: self
                        .file_lines
                        .get(file)
                        .and_then(|l| l.get(&field))
                        .copied()
                        .or(*line),
                },
                other => other.clone(),
            };
            let problem = match &item {
                Value::String(_, text) => match check_minisign_key(text.trim()) {
                    Ok(()) => {
                        keys.push(text.trim().to_owned());
                        continue;
                    }
                    Err(why) => why,
                },
                other => format!(
                    "must be a minisign public key in quotes{}",
                    found_type(other)
                ),
            };
            self.problems.push(Problem {
                field,
                source,
                message: problem,
                value: Some(show_value(path, &item)),
            });
        }
        keys
    }

    fn credentials(&mut self) -> Option<DeviceCredentials> {
        let id_found = self.find("terminal.client_id");
        let secret_found = self.find("terminal.client_secret");
        let client_id = id_found
            .as_ref()
            .and_then(|_| self.string("terminal.client_id"));
        let client_secret = secret_found
            .as_ref()
            .and_then(|_| self.string("terminal.client_secret"));
        match (id_found, secret_found) {
            (Some(_), Some(_)) => Some(DeviceCredentials {
                client_id: client_id?,
                client_secret: Secret::new(client_secret?),
            }),
            (Some(found), None) => {
                self.problem(
                    "terminal.client_id",
                    &found,
                    "is set but terminal.client_secret is not: set both (`spacepos onboard` stores them) or neither",
                );
                None
            }
            (None, Some(found)) => {
                self.problem(
                    "terminal.client_secret",
                    &found,
                    "is set but terminal.client_id is not: set both (`spacepos onboard` stores them) or neither",
                );
                None
            }
            (None, None) => None,
        }
    }
}

fn num_to_i128(num: Num) -> Option<i128> {
    Some(match num {
        Num::U8(v) => v.into(),
        Num::U16(v) => v.into(),
        Num::U32(v) => v.into(),
        Num::U64(v) => v.into(),
        Num::U128(v) => i128::try_from(v).ok()?,
        Num::USize(v) => i128::try_from(v).ok()?,
        Num::I8(v) => v.into(),
        Num::I16(v) => v.into(),
        Num::I32(v) => v.into(),
        Num::I64(v) => v.into(),
        Num::I128(v) => v,
        Num::ISize(v) => i128::try_from(v).ok()?,
        Num::F32(_) | Num::F64(_) => return None,
    })
}

/// `" (found text)"` etc., for type errors.
fn found_type(value: &Value) -> String {
    let what = match value {
        Value::String(..) | Value::Char(..) => "text",
        Value::Bool(..) => "true/false",
        Value::Num(_, Num::F32(_) | Num::F64(_)) => "a decimal number",
        Value::Num(..) => "a number",
        Value::Empty(..) => "nothing",
        Value::Dict(..) => "a table",
        Value::Array(..) => "a list",
    };
    format!(" (found {what})")
}

/// `"a, b"` or `"[a, b]"` or `["a", "b"]` -> the items.
fn split_env_list(text: &str) -> Vec<String> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(',')
        .map(|s| {
            s.trim()
                .trim_matches('"')
                .trim_matches('\'')
                .trim()
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// A minisign public key is the base64 of 42 bytes: `Ed`, an 8-byte key id and
/// a 32-byte Ed25519 key.
fn check_minisign_key(text: &str) -> Result<(), String> {
    const WHAT: &str = "use the second line of the key's minisign .pub file (base64 of 42 bytes starting with \"Ed\")";
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("is not a minisign public key: not valid base64 ({e}); {WHAT}"))?;
    if bytes.len() != 42 {
        return Err(format!(
            "is not a minisign public key: decodes to {} bytes, not 42; {WHAT}",
            bytes.len()
        ));
    }
    if !bytes.starts_with(b"Ed") {
        return Err(format!(
            "is not a minisign public key: it does not start with the Ed25519 marker \"Ed\"; {WHAT}"
        ));
    }
    Ok(())
}

/// Render a raw value for a message, hiding secrets.
fn show_value(path: &str, value: &Value) -> String {
    let kind = spec(path).map(|k| k.kind);
    match (kind, value) {
        (Some(Kind::Secret), _) => HIDDEN.to_owned(),
        (Some(Kind::Url(_)), Value::String(_, text)) => redact_url_text(text),
        (_, Value::String(_, s)) => format!("{s:?}"),
        (_, Value::Char(_, c)) => format!("{c:?}"),
        (_, Value::Bool(_, b)) => b.to_string(),
        (_, Value::Num(_, n)) => match *n {
            Num::F32(f) => f.to_string(),
            Num::F64(f) => f.to_string(),
            other => num_to_i128(other).map_or_else(|| "?".to_owned(), |n| n.to_string()),
        },
        (_, Value::Empty(..)) => "nothing".to_owned(),
        (_, Value::Dict(..)) => "{ ... }".to_owned(),
        (_, Value::Array(_, items)) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(|v| show_value("", v))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

/// A URL as it may be shown: the password replaced by `***`, even when the
/// text does not parse as a URL.
fn redact_url_text(text: &str) -> String {
    if let Ok(url) = Url::parse(text.trim()) {
        if url.password().is_none() {
            return format!("{text:?}");
        }
        return format!("{:?}", RedactedUrl::new(url).redacted());
    }
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!(
                "{:?}",
                format!("{}://{HIDDEN}@{}", &text[..scheme_end], &text[at + 1..])
            )
        }
        _ => format!("{text:?}"),
    }
}

// ---------------------------------------------------------------------------
// The redacted view (`spacepos config show`)
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Show {
    Exposed,
    Redacted,
}

/// Every key with its effective value, in the units of the config file.
fn flat_values(config: &Config, show: Show) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::{Value as J, json};
    let opt = |s: &Option<String>| s.as_ref().map_or(J::Null, |s| J::from(s.as_str()));
    let company = config
        .terminal
        .company_information
        .clone()
        .unwrap_or_default();
    let credentials = config.terminal.credentials.as_ref();
    let secret = match (credentials, show) {
        (None, _) => J::Null,
        (Some(_), Show::Redacted) => J::from(HIDDEN),
        (Some(c), Show::Exposed) => J::from(c.client_secret.expose()),
    };
    let amqp = match (&config.node.amqp_url, show) {
        (None, _) => J::Null,
        (Some(url), Show::Redacted) => J::from(url.redacted()),
        (Some(url), Show::Exposed) => J::from(url.expose().as_str()),
    };
    vec![
        (
            "node.api_endpoint",
            config
                .node
                .api_endpoint
                .as_ref()
                .map_or(J::Null, |u| J::from(u.as_str())),
        ),
        ("node.amqp_url", amqp),
        ("node.exchange", J::from(config.node.exchange.as_str())),
        ("node.features.till", J::from(config.node.features.till)),
        (
            "node.features.spacefuel",
            J::from(config.node.features.spacefuel),
        ),
        (
            "terminal.onboarding_code",
            opt(&config.terminal.onboarding_code),
        ),
        (
            "terminal.client_id",
            credentials.map_or(J::Null, |c| J::from(c.client_id.as_str())),
        ),
        ("terminal.client_secret", secret),
        ("terminal.store_number", json!(config.terminal.store_number)),
        (
            "terminal.terminal_number",
            json!(config.terminal.terminal_number),
        ),
        (
            "terminal.report_presence",
            J::from(config.terminal.report_presence),
        ),
        (
            "terminal.presence_interval_seconds",
            J::from(config.terminal.presence_interval_seconds),
        ),
        ("terminal.company_information.name", opt(&company.name)),
        (
            "terminal.company_information.vat_number",
            opt(&company.vat_number),
        ),
        (
            "terminal.company_information.address",
            opt(&company.address),
        ),
        (
            "terminal.company_information.currency",
            opt(&company.currency),
        ),
        (
            "terminal.company_information.time_zone",
            opt(&company.time_zone),
        ),
        ("sync.ingest_enabled", J::from(config.sync.ingest_enabled)),
        ("sync.send_enabled", J::from(config.sync.send_enabled)),
        (
            "sync.ingest_frequency",
            J::from(config.sync.ingest_frequency.as_secs()),
        ),
        (
            "sync.send_frequency",
            J::from(config.sync.send_frequency.as_secs()),
        ),
        (
            "sync.data_sync_retry_interval_minutes",
            J::from(config.sync.retry_interval.as_secs() / 60),
        ),
        (
            "updates.check_interval_seconds",
            J::from(config.updates.check_interval.as_secs()),
        ),
        (
            "updates.snooze_minutes",
            J::from(config.updates.snooze.as_secs() / 60),
        ),
        ("updates.max_snoozes", J::from(config.updates.max_snoozes)),
        (
            "updates.trusted_keys",
            J::from(config.updates.trusted_keys.clone()),
        ),
        (
            "spacefuel.health_grace_seconds",
            J::from(config.spacefuel.health_grace.as_secs()),
        ),
        (
            "spacefuel.auto_authorise",
            J::from(config.spacefuel.auto_authorise),
        ),
        (
            "spacefuel.auto_settle",
            J::from(config.spacefuel.auto_settle),
        ),
        (
            "spacefuel.simulator.pumps",
            J::from(config.spacefuel.simulator.pumps),
        ),
        (
            "spacefuel.simulator.flow_ml_per_second",
            J::from(config.spacefuel.simulator.flow_ml_per_second),
        ),
        (
            "spacefuel.simulator.customers_per_pump",
            J::from(config.spacefuel.simulator.customers_per_pump),
        ),
        (
            "spacefuel.simulator.arrival_gap_ms",
            J::from(config.spacefuel.simulator.arrival_gap_ms),
        ),
    ]
}

/// The effective configuration for `spacepos config show --json`: an object
/// with one entry per key (`"sync.send_frequency": {"value": 5, "source":
/// "built-in default"}`), values in the config file's units, the client
/// secret as `"***"` and the AMQP URL's password as `***`.
pub fn redacted_view(
    config: &Config,
    sources: &BTreeMap<String, ConfigSource>,
) -> serde_json::Value {
    let entries = flat_values(config, Show::Redacted)
        .into_iter()
        .map(|(key, value)| {
            let source = sources
                .get(key)
                .unwrap_or(&ConfigSource::Default)
                .to_string();
            (
                key.to_owned(),
                serde_json::json!({ "value": value, "source": source }),
            )
        });
    serde_json::Value::Object(entries.collect())
}

/// The same as [`redacted_view`] as text for `spacepos config show`: one
/// `key = value  # source` line per key, in the order of `docs/configuration.md`.
pub fn redacted_text(config: &Config, sources: &BTreeMap<String, ConfigSource>) -> String {
    let rows = flat_values(config, Show::Redacted);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in rows {
        let source = sources.get(key).unwrap_or(&ConfigSource::Default);
        let value = if value.is_null() {
            "(unset)".to_owned()
        } else {
            value.to_string()
        };
        out.push_str(&format!("{key:<width$} = {value}  # {source}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use pretty_assertions::assert_eq;
    use std::io::Write as _;

    /// A valid minisign public key (42 bytes: "Ed", key id, key).
    const KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Self {
            Dir(tempfile::tempdir().expect("temp dir"))
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.path().join(name);
            let mut f = std::fs::File::create(&path).expect("create");
            f.write_all(text.as_bytes()).expect("write");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod");
            }
            path
        }
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn record() -> TerminalRecord {
        TerminalRecord {
            schema_version: crate::TERMINAL_RECORD_VERSION,
            client_id: "trm_erp".into(),
            client_secret: Secret::new("erp-secret-value"),
            store_number: 12,
            terminal_number: 3,
            api_endpoint: Some(Url::parse("https://erp.example.com").expect("url")),
            amqp_url: Some(
                RedactedUrl::parse("amqps://pos:amqp-pw@mq.example.com:5671/pos").expect("url"),
            ),
            company_information: None,
            report_presence: Some(true),
            presence_interval_seconds: Some(1200),
            onboarded_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn problems(err: ConfigError) -> Vec<Problem> {
        match err {
            ConfigError::Invalid(problems) => problems,
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn defaults_alone_load_and_equal_config_default() {
        let (config, sources) = ConfigLoader::new()
            .load_with_sources()
            .expect("defaults are valid");
        assert_eq!(config, Config::default());
        assert_eq!(sources.len(), KEYS.len());
        assert!(sources.values().all(|s| *s == ConfigSource::Default));
    }

    #[test]
    fn full_example_file_loads() {
        let dir = Dir::new();
        let path = dir.file(
            "spacepos.toml",
            &format!(
                r#"
[node]
api_endpoint = "https://erp.example.com"
amqp_url = "amqps://user:pw@mq.example.com:5671/pos"
exchange = "erp_event_bus"
[node.features]
till = true
spacefuel = true
[terminal]
onboarding_code = "K7Q2-9XTM"
client_id = "trm_1"
client_secret = "s3cr3t"
store_number = 12
terminal_number = 3
report_presence = false
presence_interval_seconds = 600
[terminal.company_information]
name = "Northwind"
currency = "GBP"
[sync]
ingest_enabled = true
send_enabled = false
ingest_frequency = 600
send_frequency = 10
data_sync_retry_interval_minutes = 2
[updates]
check_interval_seconds = 7200
snooze_minutes = 10
max_snoozes = 0
trusted_keys = ["{KEY}"]
"#
            ),
        );
        let config = ConfigLoader::new().file(&path).load().expect("valid");
        assert_eq!(
            config
                .node
                .amqp_url
                .as_ref()
                .map(|u| u.redacted())
                .as_deref(),
            Some("amqps://user:***@mq.example.com:5671/pos")
        );
        assert!(config.node.features.spacefuel);
        let identity = config.terminal.identity().expect("identity");
        assert_eq!(identity.terminal_header(), "12/3");
        assert_eq!(
            config
                .terminal
                .credentials
                .as_ref()
                .map(|c| c.client_secret.expose()),
            Some("s3cr3t")
        );
        assert_eq!(
            config
                .terminal
                .company_information
                .as_ref()
                .and_then(|c| c.currency.as_deref()),
            Some("GBP")
        );
        assert!(!config.sync.send_enabled);
        assert_eq!(config.sync.send_frequency, Duration::from_secs(10));
        assert_eq!(config.sync.retry_interval, Duration::from_secs(120));
        assert_eq!(config.updates.snooze, Duration::from_secs(600));
        assert_eq!(config.updates.max_snoozes, 0);
        assert_eq!(config.updates.trusted_keys, vec![KEY.to_owned()]);
    }

    #[test]
    fn unknown_key_in_file_names_its_line() {
        let dir = Dir::new();
        let path = dir.file(
            "c.toml",
            "[sync]\nsend_frequency = 5\n\n# comment\nsend_frequncy = 7\n[bogus]\nx = 1\n",
        );
        let problems = problems(
            ConfigLoader::new()
                .file(&path)
                .load()
                .expect_err("must be refused"),
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].field, "sync.send_frequncy");
        assert_eq!(
            problems[0].source,
            ConfigSource::File {
                path: path.clone(),
                line: Some(5)
            }
        );
        assert!(
            problems[0]
                .message
                .contains("did you mean `sync.send_frequency`"),
            "{}",
            problems[0].message
        );
        assert_eq!(problems[1].field, "bogus");
        assert_eq!(
            problems[1].source,
            ConfigSource::File {
                path: path.clone(),
                line: Some(6)
            }
        );
        let text = ConfigError::Invalid(problems).to_string();
        assert!(
            text.contains(&format!("{} line 5", path.display())),
            "{text}"
        );
    }

    #[test]
    fn unknown_env_var_is_named() {
        let err = ConfigLoader::new()
            .env(env(&[
                ("SPACEPOS_SYNC_SEND_FREQUENCY", "5"),
                ("SPACEPOS_CONFIG", "/etc/spacepos.toml"),
                ("SPACEPOS_DATA_DIR", "/var/lib/spacepos"),
                ("SPACEPOS_LOG", "debug"),
                ("PATH", "/usr/bin"),
            ]))
            .load()
            .expect_err("must be refused");
        let problems = problems(err);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].source,
            ConfigSource::Env {
                var: "SPACEPOS_SYNC_SEND_FREQUENCY".into()
            }
        );
        assert!(
            problems[0]
                .message
                .contains("did you mean SPACEPOS_SYNC__SEND_FREQUENCY?"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn env_names_are_case_insensitive_and_nested() {
        let (config, sources) = ConfigLoader::new()
            .env(env(&[
                ("spacepos_node__features__spacefuel", "true"),
                ("SPACEPOS_SYNC__SEND_FREQUENCY", "7"),
            ]))
            .load_with_sources()
            .expect("valid");
        assert!(config.node.features.spacefuel);
        assert_eq!(config.sync.send_frequency, Duration::from_secs(7));
        assert_eq!(
            sources["node.features.spacefuel"],
            ConfigSource::Env {
                var: "spacepos_node__features__spacefuel".into()
            }
        );
    }

    #[test]
    fn negative_frequency_from_file() {
        let dir = Dir::new();
        let path = dir.file(
            "spacepos.toml",
            "[node]\nexchange = \"x\"\n\n\n[sync]\ningest_frequency = 300\nsend_frequency = -5\n",
        );
        let err = ConfigLoader::new()
            .file(&path)
            .load()
            .expect_err("must be refused");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "sync.send_frequency = -5 ({} line 7): must be between 1 and 86400 seconds",
                path.display()
            )),
            "{text}"
        );
    }

    #[test]
    fn negative_frequency_from_env() {
        let err = ConfigLoader::new()
            .env(env(&[("SPACEPOS_SYNC__SEND_FREQUENCY", "-5")]))
            .load()
            .expect_err("must be refused");
        assert_eq!(
            problems(err),
            vec![Problem {
                field: "sync.send_frequency".into(),
                source: ConfigSource::Env {
                    var: "SPACEPOS_SYNC__SEND_FREQUENCY".into()
                },
                message: "must be between 1 and 86400 seconds".into(),
                value: Some("\"-5\"".into()),
            }]
        );
    }

    #[test]
    fn all_problems_are_collected() {
        let dir = Dir::new();
        let path = dir.file(
            "c.toml",
            "[sync]\nsend_frequency = \"fast\"\ningest_frequency = 0\ningest_enabled = 1\n[updates]\nmax_snoozes = 11\nsnooze_minutes = 2.5\ntrusted_keys = [\"nope\", 5]\n",
        );
        let err = ConfigLoader::new()
            .file(&path)
            .env(env(&[(
                "SPACEPOS_UPDATES__CHECK_INTERVAL_SECONDS",
                "often",
            )]))
            .load()
            .expect_err("must be refused");
        let fields: Vec<String> = problems(err).into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "sync.ingest_enabled",
                "sync.ingest_frequency",
                "sync.send_frequency",
                "updates.check_interval_seconds",
                "updates.snooze_minutes",
                "updates.max_snoozes",
                "updates.trusted_keys[0]",
                "updates.trusted_keys[1]",
            ]
        );
    }

    #[test]
    fn trusted_keys_must_decode() {
        assert!(check_minisign_key(KEY).is_ok());
        assert!(check_minisign_key("not base64!").is_err());
        assert!(
            check_minisign_key("RWQf6LRCGA9i5w==")
                .expect_err("must be refused")
                .contains("not 42")
        );
        let config = ConfigLoader::new()
            .env(env(&[(
                "SPACEPOS_UPDATES__TRUSTED_KEYS",
                &format!("{KEY}, {KEY}"),
            )]))
            .load()
            .expect("valid");
        assert_eq!(config.updates.trusted_keys.len(), 2);
    }

    #[test]
    fn http_url_to_a_remote_host_is_refused() {
        let dir = Dir::new();
        let path = dir.file(
            "c.toml",
            "[node]\napi_endpoint = \"http://erp.example.com/api\"\n",
        );
        let problems = problems(
            ConfigLoader::new()
                .file(&path)
                .load()
                .expect_err("must be refused"),
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "node.api_endpoint");
        assert_eq!(
            problems[0].source,
            ConfigSource::File {
                path,
                line: Some(2)
            }
        );
        assert!(
            problems[0]
                .message
                .contains("use `https://erp.example.com`"),
            "{}",
            problems[0].message
        );

        let ok = ConfigLoader::new()
            .env(env(&[(
                "SPACEPOS_NODE__API_ENDPOINT",
                "http://127.0.0.1:8080",
            )]))
            .load();
        assert!(ok.is_ok());
        let bad = ConfigLoader::new()
            .env(env(&[("SPACEPOS_NODE__API_ENDPOINT", "not a url")]))
            .load()
            .expect_err("must be refused");
        assert!(bad.to_string().contains("is not a valid URL"), "{bad}");
    }

    #[test]
    fn plain_amqp_to_a_remote_host_is_refused_without_showing_the_password() {
        let err = ConfigLoader::new()
            .env(env(&[(
                "SPACEPOS_NODE__AMQP_URL",
                "amqp://pos:hunter2@mq.example.com:5672/pos",
            )]))
            .load()
            .expect_err("must be refused");
        let text = err.to_string();
        assert!(
            text.contains("node.amqp_url = \"amqp://pos:***@mq.example.com:5672/pos\""),
            "{text}"
        );
        assert!(text.contains("use `amqps://mq.example.com`"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");

        let loopback = ConfigLoader::new().env(env(&[(
            "SPACEPOS_NODE__AMQP_URL",
            "amqp://guest:guest@127.0.0.1:5672/%2f",
        )]));
        assert!(loopback.load().is_ok());
    }

    #[test]
    fn erp_values_are_validated_too() {
        let mut rec = record();
        rec.api_endpoint = Some(Url::parse("http://10.0.0.5").expect("url"));
        let problems = problems(
            ConfigLoader::new()
                .terminal_record(Some(&rec))
                .load()
                .expect_err("must be refused"),
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].source, ConfigSource::Erp);
        assert!(
            problems[0]
                .to_string()
                .contains("terminal.json (set by the ERP)"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn precedence_of_the_four_layers() {
        let dir = Dir::new();
        let path = dir.file(
            "spacepos.toml",
            "[terminal]\npresence_interval_seconds = 600\nstore_number = 7\n[sync]\nsend_frequency = 10\ningest_frequency = 60\n",
        );
        let vars = env(&[
            ("SPACEPOS_TERMINAL__PRESENCE_INTERVAL_SECONDS", "900"),
            ("SPACEPOS_SYNC__SEND_FREQUENCY", "20"),
        ]);
        let rec = record();

        let (config, sources) = ConfigLoader::new()
            .file(&path)
            .env(vars.clone())
            .terminal_record(Some(&rec))
            .load_with_sources()
            .expect("valid");
        // presence interval set in all four layers: the ERP wins.
        assert_eq!(config.terminal.presence_interval_seconds, 1200);
        assert_eq!(
            sources["terminal.presence_interval_seconds"],
            ConfigSource::Erp
        );
        // store number in file and ERP: the ERP wins.
        assert_eq!(config.terminal.store_number, Some(12));
        // send frequency in default, file and env: env wins.
        assert_eq!(config.sync.send_frequency, Duration::from_secs(20));
        assert_eq!(
            sources["sync.send_frequency"],
            ConfigSource::Env {
                var: "SPACEPOS_SYNC__SEND_FREQUENCY".into()
            }
        );
        // ingest frequency in default and file: the file wins, with its line.
        assert_eq!(config.sync.ingest_frequency, Duration::from_secs(60));
        assert_eq!(
            sources["sync.ingest_frequency"],
            ConfigSource::File {
                path: path.clone(),
                line: Some(6)
            }
        );
        // retry interval only in the defaults.
        assert_eq!(
            sources["sync.data_sync_retry_interval_minutes"],
            ConfigSource::Default
        );
        assert_eq!(sources["terminal.client_secret"], ConfigSource::Erp);

        // Without the ERP layer, the environment wins; without env, the file.
        let (config, sources) = ConfigLoader::new()
            .file(&path)
            .env(vars)
            .load_with_sources()
            .expect("valid");
        assert_eq!(config.terminal.presence_interval_seconds, 900);
        assert_eq!(
            sources["terminal.presence_interval_seconds"],
            ConfigSource::Env {
                var: "SPACEPOS_TERMINAL__PRESENCE_INTERVAL_SECONDS".into()
            }
        );
        let (config, sources) = ConfigLoader::new()
            .file(&path)
            .load_with_sources()
            .expect("valid");
        assert_eq!(config.terminal.presence_interval_seconds, 600);
        assert_eq!(
            sources["terminal.presence_interval_seconds"],
            ConfigSource::File {
                path,
                line: Some(2)
            }
        );
    }

    #[test]
    fn later_file_wins_and_optional_missing_file_is_skipped() {
        let dir = Dir::new();
        let a = dir.file("a.toml", "[sync]\nsend_frequency = 10\n");
        let b = dir.file("b.toml", "\n[sync]\nsend_frequency = 11\n");
        let (config, sources) = ConfigLoader::new()
            .optional_file(dir.0.path().join("missing.toml"))
            .file(&a)
            .optional_file(&b)
            .load_with_sources()
            .expect("valid");
        assert_eq!(config.sync.send_frequency, Duration::from_secs(11));
        assert_eq!(
            sources["sync.send_frequency"],
            ConfigSource::File {
                path: b,
                line: Some(3)
            }
        );
    }

    #[test]
    fn missing_required_file_is_named() {
        let missing = PathBuf::from("/nonexistent/spacepos.toml");
        let err = ConfigLoader::new()
            .file(&missing)
            .load()
            .expect_err("must be refused");
        assert!(matches!(&err, ConfigError::Unreadable { path, .. } if *path == missing));
        assert!(
            err.to_string().contains("/nonexistent/spacepos.toml"),
            "{err}"
        );
    }

    #[test]
    fn syntax_error_names_file_and_line_without_the_secret() {
        let dir = Dir::new();
        let path = dir.file(
            "c.toml",
            "[terminal]\nclient_id = \"a\"\nclient_secret = \"hunter2\n",
        );
        let err = ConfigLoader::new()
            .file(&path)
            .load()
            .expect_err("must be refused");
        assert!(
            matches!(&err, ConfigError::Syntax { line: 3, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("{} line 3", path.display())),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn erp_presence_interval_is_clamped_not_rejected() {
        let mut rec = record();
        rec.presence_interval_seconds = Some(5);
        let config = ConfigLoader::new()
            .terminal_record(Some(&rec))
            .load()
            .expect("clamped");
        assert_eq!(config.terminal.presence_interval_seconds, 30);
        rec.presence_interval_seconds = Some(1_000_000);
        let config = ConfigLoader::new()
            .terminal_record(Some(&rec))
            .load()
            .expect("clamped");
        assert_eq!(config.terminal.presence_interval_seconds, 86_400);
        // The same value from the environment is an error.
        let err = ConfigLoader::new()
            .env(env(&[(
                "SPACEPOS_TERMINAL__PRESENCE_INTERVAL_SECONDS",
                "5",
            )]))
            .load();
        assert!(
            err.expect_err("must be refused")
                .to_string()
                .contains("must be between 30 and 86400 seconds")
        );
    }

    #[test]
    fn client_id_and_secret_come_in_pairs() {
        let only_id = ConfigLoader::new()
            .env(env(&[("SPACEPOS_TERMINAL__CLIENT_ID", "trm_1")]))
            .load()
            .expect_err("must be refused");
        assert!(
            only_id
                .to_string()
                .contains("terminal.client_id = \"trm_1\""),
            "{only_id}"
        );
        assert!(
            only_id
                .to_string()
                .contains("terminal.client_secret is not"),
            "{only_id}"
        );
        let only_secret = ConfigLoader::new()
            .env(env(&[("SPACEPOS_TERMINAL__CLIENT_SECRET", "0042")]))
            .load()
            .expect_err("must be refused");
        let text = only_secret.to_string();
        assert!(text.contains("terminal.client_secret = ***"), "{text}");
        assert!(!text.contains("0042"), "{text}");
        // A numeric-looking secret from the environment stays text.
        let both = ConfigLoader::new()
            .env(env(&[
                ("SPACEPOS_TERMINAL__CLIENT_ID", "trm_1"),
                ("SPACEPOS_TERMINAL__CLIENT_SECRET", "0042"),
            ]))
            .load()
            .expect("valid");
        assert_eq!(
            both.terminal
                .credentials
                .map(|c| c.client_secret.expose().to_owned())
                .as_deref(),
            Some("0042")
        );
    }

    #[test]
    fn secrets_never_in_error_display_or_redacted_view() {
        let dir = Dir::new();
        let path = dir.file(
            "c.toml",
            "[terminal]\nclient_secret = 12345\n[node]\namqp_url = \"amqp://u:file-pw@mq.example.com/pos\"\n",
        );
        let err = ConfigLoader::new()
            .file(&path)
            .load()
            .expect_err("must be refused");
        let text = format!("{err} {err:?}");
        for secret in ["12345", "file-pw"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }

        let rec = record();
        let loader = ConfigLoader::new()
            .env(env(&[("SPACEPOS_TERMINAL__ONBOARDING_CODE", "K7Q2-9XTM")]))
            .terminal_record(Some(&rec));
        assert!(!format!("{loader:?}").contains("erp-secret-value"));
        let (config, sources) = loader.load_with_sources().expect("valid");
        let view = redacted_view(&config, &sources);
        let shown = format!("{view} {} {config:?}", redacted_text(&config, &sources));
        for secret in ["erp-secret-value", "amqp-pw"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert_eq!(view["terminal.client_secret"]["value"], "***");
        assert_eq!(
            view["terminal.client_secret"]["source"],
            "terminal.json (set by the ERP)"
        );
        assert_eq!(
            view["node.amqp_url"]["value"],
            "amqps://pos:***@mq.example.com:5671/pos"
        );
        assert_eq!(view["sync.send_frequency"]["value"], 5);
        assert_eq!(view["sync.send_frequency"]["source"], "built-in default");
        assert_eq!(
            view["terminal.onboarding_code"]["source"],
            "environment variable SPACEPOS_TERMINAL__ONBOARDING_CODE"
        );
        assert_eq!(view.as_object().map(|o| o.len()), Some(KEYS.len()));
    }

    #[cfg(unix)]
    #[test]
    fn secret_in_a_group_readable_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = Dir::new();
        let path = dir.file(
            "c.toml",
            "[terminal]\nclient_id = \"trm_1\"\nclient_secret = \"s3cr3t\"\n",
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = ConfigLoader::new()
            .file(&path)
            .load()
            .expect_err("must be refused");
        assert!(
            matches!(err, ConfigError::InsecurePermissions { mode: 0o640, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", path.display())),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(ConfigLoader::new().file(&path).load().is_ok());
        // Without a secret the same mode is fine.
        let open = dir.file("open.toml", "[sync]\nsend_frequency = 5\n");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(ConfigLoader::new().file(&open).load().is_ok());
    }

    #[test]
    fn wrong_section_shape_is_reported() {
        let dir = Dir::new();
        let path = dir.file("c.toml", "sync = 5\n");
        let problems = problems(
            ConfigLoader::new()
                .file(&path)
                .load()
                .expect_err("must be refused"),
        );
        assert_eq!(problems[0].field, "sync");
        assert!(problems[0].message.contains("must be a table"));
        let err = ConfigLoader::new()
            .env(env(&[("SPACEPOS_SYNC", "x")]))
            .load()
            .expect_err("must be refused");
        assert!(err.to_string().contains("is a section"), "{err}");
    }

    #[test]
    fn erp_company_information_replaces_the_file_table() {
        let dir = Dir::new();
        let path = dir.file(
            "c.toml",
            "[terminal.company_information]\nname = \"Local\"\nvat_number = \"X1\"\n",
        );
        let mut rec = record();
        rec.company_information = Some(CompanyInformation {
            name: Some("Northwind".into()),
            ..Default::default()
        });
        let config = ConfigLoader::new()
            .file(&path)
            .terminal_record(Some(&rec))
            .load()
            .expect("valid");
        assert_eq!(
            config.terminal.company_information,
            Some(CompanyInformation {
                name: Some("Northwind".into()),
                ..Default::default()
            })
        );
    }

    const DOC: &str = include_str!("../../../docs/configuration.md");

    #[test]
    fn auto_settle_follows_the_till_unless_set() {
        let dir = Dir::new();
        let load = |text: &str| {
            let path = dir.file("settle.toml", text);
            ConfigLoader::new()
                .file(&path)
                .load()
                .expect("valid")
                .spacefuel
                .auto_settle
        };
        assert!(!load(""), "a till runs by default: the till clears sales");
        assert!(
            load("[node.features]\ntill = false\n"),
            "no till: SpaceFuel settles"
        );
        assert!(!load(
            "[node.features]\ntill = false\n[spacefuel]\nauto_settle = false\n"
        ));
        assert!(load("[spacefuel]\nauto_settle = true\n"));
    }

    #[test]
    fn documented_example_file_is_valid() {
        let start = DOC
            .find("```toml\n")
            .expect("docs/configuration.md has a TOML example")
            + 8;
        let len = DOC[start..].find("```").expect("the example ends");
        let dir = Dir::new();
        let path = dir.file("example.toml", &DOC[start..start + len]);
        let config = ConfigLoader::new()
            .file(&path)
            .load()
            .expect("the documented example loads");
        assert_eq!(
            config.sync.send_frequency,
            Duration::from_secs(defaults::SEND_FREQUENCY_SECONDS)
        );
    }

    #[test]
    fn every_key_and_variable_is_documented() {
        for key in KEYS {
            // Written relative to its section: `features.till` under [node].
            let (_, in_section) = key.path.split_once('.').unwrap_or(("", key.path));
            assert!(
                DOC.contains(&format!("`{in_section}`"))
                    || key.path.starts_with("terminal.company_information."),
                "docs/configuration.md lacks `{in_section}`"
            );
            let var = env_name(key.path);
            let documented =
                DOC.contains(&var) || key.path.starts_with("terminal.company_information.");
            assert!(documented, "docs/configuration.md lacks {var}");
        }
    }
}
