//! `pecd.toml`: every setting of a gestore, documented key by key in `conf/pecd.toml`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Who the gestore is and where its state lives.
    pub gestore: GestoreConfig,
}

/// The `[gestore]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GestoreConfig {
    /// Directory of the durable state (mailboxes, queue, log); relative to the file.
    pub data_dir: PathBuf,
    /// Default quota of new mailboxes, e.g. `"2GiB"`.
    #[serde(default = "default_quota")]
    pub default_quota: String,
}

fn default_quota() -> String {
    "2GiB".into()
}

impl Config {
    /// Reads and checks a configuration file; relative paths in it are taken relative
    /// to the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.gestore.data_dir = base.join(&config.gestore.data_dir);
        parse_size(&config.gestore.default_quota)
            .with_context(|| format!("gestore.default_quota in {}", path.display()))?;
        Ok(config)
    }

    /// The default quota in bytes.
    pub fn default_quota(&self) -> u64 {
        parse_size(&self.gestore.default_quota).unwrap_or(2 << 30)
    }
}

/// Reads a size such as `2GiB`, `500MB`, `1024` (bytes). Binary and decimal units.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a size"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        "t" | "tb" => 1000 * 1000 * 1000 * 1000,
        "tib" => 1 << 40,
        other => bail!("unknown size unit {other:?} in {text:?}"),
    };
    n.checked_mul(factor)
        .with_context(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("3 GB").unwrap(), 3_000_000_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("2 parsecs").is_err());
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("99999999999999TiB").is_err());
    }
}
