//! segmentctl: the verification interface of SPEC §8 over segments-core.
//! Exit codes: 0 ok, 2 invalid input (errors with their paths on stderr), 1 I/O failure.

mod legacy;

use clap::{Parser, Subcommand};
use segments_core::history::{Run, render_run};
use segments_core::report::{parse_report_request, render_report};
use segments_core::sql::DialectKind;
use segments_core::time::{parse_now, parse_time_zone};
use segments_core::{
    Catalog, CoreError, Target, check_segment_bytes, render_refresh, render_segment,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "segmentctl",
    version,
    about = "Render and validate segment SQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print {"table", "createTableQuery", "cronjobQuery"} for a segment.
    Render {
        #[arg(long)]
        segment: PathBuf,
        #[command(flatten)]
        at: RenderArgs,
    },
    /// Print the refresh one scheduled run submits: rendered from a segment
    /// file (what the cronjob does), or a stored query of any compiler version
    /// with its placeholders replaced (for queries stored before version 2).
    CronjobSql {
        /// A stored `query` column.
        #[arg(
            long = "query-file",
            conflicts_with = "segment",
            required_unless_present = "segment"
        )]
        query_file: Option<PathBuf>,
        /// A segment file; needs --dataset (and --project for BigQuery).
        #[arg(long, requires = "dataset")]
        segment: Option<PathBuf>,
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        dataset: Option<String>,
        #[arg(long)]
        catalog: Option<PathBuf>,
        #[arg(long = "time-zone")]
        time_zone: String,
        #[arg(long)]
        now: String,
        #[command(flatten)]
        dialect: DialectArg,
    },
    /// Print one report query per segment and comparison segment.
    ReportSql {
        #[arg(long)]
        request: PathBuf,
        #[command(flatten)]
        at: RenderArgs,
    },
    /// Print {"sql"}: the statements of one run (SPEC §11) as the functions submit them.
    RunSql {
        #[arg(long)]
        segment: PathBuf,
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        dataset: String,
        #[arg(long = "time-zone")]
        time_zone: String,
        #[arg(long)]
        now: String,
        #[arg(long = "run-id")]
        run_id: String,
        #[arg(long, default_value_t = 1)]
        revision: i64,
        #[command(flatten)]
        dialect: DialectArg,
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
    /// Print {"statements": [...]}: the statements that build the reference
    /// tables in --dataset from a source's raw tables (SPEC §10).
    Models {
        /// The kind of source (`segment`: Segment.com warehouse tables).
        #[arg(long)]
        source: ModelSource,
        #[command(flatten)]
        dialect: DialectArg,
        /// The BigQuery project (ignored by warehouses without projects).
        #[arg(long, default_value = "")]
        project: String,
        /// The dataset (or schema) holding the raw tables.
        #[arg(long = "source-dataset")]
        source_dataset: String,
        /// The account's dataset (or schema) the tables are built in.
        #[arg(long)]
        dataset: String,
        /// A new session starts after this many minutes without events.
        #[arg(long = "session-timeout-minutes", default_value_t = segments_core::models::DEFAULT_SESSION_TIMEOUT_MINUTES)]
        session_timeout_minutes: u32,
        /// Print the statements of a refresh after an earlier build instead
        /// of a full build (docs/segment-source.md).
        #[arg(long)]
        refresh: bool,
    },
    /// Exit 0 for a valid segment, or 2 listing every error with its path.
    Validate {
        #[arg(long)]
        segment: PathBuf,
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
}

/// Sources `segmentctl models` knows.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ModelSource {
    /// Segment.com warehouse destinations (identifies, pages, tracks).
    Segment,
}

/// Which SQL dialect to write.
#[derive(clap::Args)]
struct DialectArg {
    /// The warehouse's SQL dialect.
    #[arg(long, default_value = "bigquery")]
    dialect: DialectKind,
}

/// Where and when statements are rendered (render and report-sql).
#[derive(clap::Args)]
struct RenderArgs {
    #[command(flatten)]
    dialect: DialectArg,
    /// The BigQuery project; ignored by warehouses without projects (postgres).
    #[arg(long)]
    project: Option<String>,
    /// The BigQuery dataset, or the Postgres schema.
    #[arg(long)]
    dataset: String,
    #[arg(long = "time-zone")]
    time_zone: String,
    #[arg(long)]
    now: String,
    #[arg(long)]
    catalog: Option<PathBuf>,
}

impl RenderArgs {
    fn resolve(
        &self,
    ) -> Result<
        (
            chrono_tz::Tz,
            chrono::DateTime<chrono::Utc>,
            Target,
            Catalog,
        ),
        Failure,
    > {
        Ok((
            parse_time_zone(&self.time_zone)?,
            parse_now(&self.now)?,
            target(self.dialect.dialect, self.project.as_deref(), &self.dataset)?,
            catalog(self.catalog.as_deref())?,
        ))
    }
}

/// The target of `dialect`; BigQuery needs its project, Postgres has none.
fn target(dialect: DialectKind, project: Option<&str>, dataset: &str) -> Result<Target, Failure> {
    let project = match (dialect, project) {
        (_, Some(p)) => p,
        (DialectKind::BigQuery, None) => {
            return Err(Failure::Invalid(
                "--project is required for --dialect bigquery".into(),
            ));
        }
        (_, None) => "",
    };
    Target::for_dialect(dialect, project, dataset).map_err(Failure::Invalid)
}

enum Failure {
    Invalid(String),
    Io(String),
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        Failure::Invalid(e.to_string())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Io(format!("cannot read {}: {e}", path.display())))
}

fn catalog(path: Option<&Path>) -> Result<Catalog, Failure> {
    match path {
        None => Ok(Catalog::default_catalog()),
        Some(p) => {
            let text = String::from_utf8(read(p)?)
                .map_err(|_| Failure::Invalid(format!("{}: not UTF-8", p.display())))?;
            Catalog::from_json(&text)
                .map_err(|e| Failure::Invalid(format!("catalog {}: {e}", p.display())))
        }
    }
}

fn json(v: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(v).map_err(|e| Failure::Io(e.to_string()))
}

fn run(cli: Cli) -> Result<String, Failure> {
    match cli.command {
        Command::Render { segment, at } => {
            let (tz, now, target, catalog) = at.resolve()?;
            let seg = check_segment_bytes(&read(&segment)?, &catalog).map_err(CoreError::from)?;
            json(&render_segment(&seg, &catalog, &target, &tz, now)?)
        }
        Command::CronjobSql {
            query_file,
            segment,
            project,
            dataset,
            catalog: cat,
            time_zone,
            now,
            dialect,
        } => {
            let tz = parse_time_zone(&time_zone)?;
            let now = parse_now(&now)?;
            let dialect = dialect.dialect;
            if let Some(segment) = segment {
                let target = target(
                    dialect,
                    project.as_deref(),
                    dataset.as_deref().unwrap_or_default(),
                )?;
                let catalog = catalog(cat.as_deref())?;
                let seg =
                    check_segment_bytes(&read(&segment)?, &catalog).map_err(CoreError::from)?;
                return Ok(render_refresh(&seg, &catalog, &target, &tz, now)?);
            }
            let path = query_file.unwrap_or_default();
            let text = String::from_utf8(read(&path)?)
                .map_err(|_| Failure::Invalid(format!("{}: not UTF-8", path.display())))?;
            Ok(legacy::substitute(&text, dialect.dialect(), &tz, now)?)
        }
        Command::ReportSql { request, at } => {
            let (tz, now, target, catalog) = at.resolve()?;
            let req = parse_report_request(&read(&request)?).map_err(CoreError::from)?;
            json(&render_report(&req, &catalog, &target, &tz, now)?)
        }
        Command::RunSql {
            segment,
            project,
            dataset,
            time_zone,
            now,
            run_id,
            revision,
            dialect,
            catalog: cat,
        } => {
            // The functions submit runs with history on BigQuery only; a
            // Postgres warehouse gets the plain build (docs/history.md, limits).
            if dialect.dialect != DialectKind::BigQuery {
                return Err(Failure::Invalid(
                    "run-sql: runs with history are submitted on BigQuery only (docs/history.md)"
                        .into(),
                ));
            }
            let (tz, now) = (parse_time_zone(&time_zone)?, parse_now(&now)?);
            // Dialects without projects ignore --project; BigQuery refuses it missing.
            let target = Target::for_dialect(
                dialect.dialect,
                project.as_deref().unwrap_or_default(),
                &dataset,
            )
            .map_err(Failure::Invalid)?;
            let catalog = catalog(cat.as_deref())?;
            let seg = check_segment_bytes(&read(&segment)?, &catalog).map_err(CoreError::from)?;
            let run = render_run(
                &seg,
                &catalog,
                &target,
                &tz,
                now,
                Run {
                    run_id: &run_id,
                    revision,
                },
            )?;
            json(&serde_json::json!({ "sql": run.sql }))
        }
        Command::Models {
            source: ModelSource::Segment,
            dialect,
            project,
            source_dataset,
            dataset,
            session_timeout_minutes,
            refresh,
        } => {
            let target = |d: &str| {
                Target::for_dialect(dialect.dialect, &project, d).map_err(Failure::Invalid)
            };
            let models = segments_core::models::SegmentSource::new(
                target(&source_dataset)?,
                target(&dataset)?,
                session_timeout_minutes,
            )?;
            let statements = if refresh {
                models.refresh()?
            } else {
                models.full_build()?
            };
            json(&serde_json::json!({ "statements": statements }))
        }
        Command::Validate {
            segment,
            catalog: cat,
        } => {
            let catalog = catalog(cat.as_deref())?;
            check_segment_bytes(&read(&segment)?, &catalog).map_err(CoreError::from)?;
            Ok("valid".to_string())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(Failure::Invalid(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
        Err(Failure::Io(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(1)
        }
    }
}
