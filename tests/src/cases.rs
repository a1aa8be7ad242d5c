//! Golden cases: `tests/cases/NAME.json` holds rule groups, the zone, and the
//! exact member ids they select from the fixture warehouse at [`NOW`].

use segments_core::{Catalog, RenderedSegment, Target, parse_segment, render_segment};
use serde::Deserialize;
use serde_json::{Value, json};

/// The instant every case is rendered at.
pub const NOW: &str = "2024-06-15T12:00:00Z";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    #[serde(skip)]
    pub name: String,
    pub about: String,
    #[serde(default = "utc")]
    pub time_zone: String,
    pub rule_groups: Value,
    pub expect: Vec<String>,
}

fn utc() -> String {
    "UTC".into()
}

impl Case {
    /// The segment JSON as the web app would store it.
    pub fn segment_json(&self) -> Value {
        json!({
            "id": format!("case-{}", self.name.replace('_', "-")),
            "accountId": "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11",
            "name": self.about,
            "ruleGroups": self.rule_groups,
        })
    }

    /// [`Case::segment_json`] under a short segment id derived from the
    /// case's name, for warehouses whose table names are short (Postgres: 63 bytes).
    pub fn segment_json_short(&self) -> Value {
        use sha2::{Digest, Sha256};
        let hash: String = Sha256::digest(self.name.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut seg = self.segment_json();
        seg["id"] = json!(format!("case-{hash}"));
        seg
    }

    /// [`Case::render`] and [`Case::cronjob_at`] for the short id.
    pub fn render_short(
        &self,
        target: &Target,
        now: &str,
    ) -> Result<(RenderedSegment, String), String> {
        let seg = parse_segment(&self.segment_json_short()).map_err(|e| e.to_string())?;
        let tz =
            segments_core::time::parse_time_zone(&self.time_zone).map_err(|e| e.to_string())?;
        let now = segments_core::time::parse_now(now).map_err(|e| e.to_string())?;
        let catalog = Catalog::default_catalog();
        let create = render_segment(&seg, &catalog, target, &tz, now).map_err(|e| e.to_string())?;
        let refresh = segments_core::render_refresh(&seg, &catalog, target, &tz, now)
            .map_err(|e| e.to_string())?;
        Ok((create, refresh))
    }

    pub fn render(&self, target: &Target, now: &str) -> Result<RenderedSegment, String> {
        let seg = parse_segment(&self.segment_json()).map_err(|e| e.to_string())?;
        let tz =
            segments_core::time::parse_time_zone(&self.time_zone).map_err(|e| e.to_string())?;
        let now = segments_core::time::parse_now(now).map_err(|e| e.to_string())?;
        render_segment(&seg, &Catalog::default_catalog(), target, &tz, now)
            .map_err(|e| e.to_string())
    }

    /// The refresh the cronjob submits at `now`, rendered from the rules.
    pub fn cronjob_at(&self, target: &Target, now: &str) -> Result<String, String> {
        let seg = parse_segment(&self.segment_json()).map_err(|e| e.to_string())?;
        let tz =
            segments_core::time::parse_time_zone(&self.time_zone).map_err(|e| e.to_string())?;
        let now = segments_core::time::parse_now(now).map_err(|e| e.to_string())?;
        segments_core::render_refresh(&seg, &Catalog::default_catalog(), target, &tz, now)
            .map_err(|e| e.to_string())
    }
}

/// The case in `tests/cases/{name}.json`.
pub fn load(name: &str) -> Case {
    let p = crate::repo_root().join(format!("tests/cases/{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut case: Case =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    case.name = name.to_string();
    case
}

pub fn load_all() -> Vec<Case> {
    let dir = crate::repo_root().join("tests/cases");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let mut case: Case =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            case.name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            case
        })
        .collect()
}
