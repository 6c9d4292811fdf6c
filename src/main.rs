//! The `substrate` command line: wiring only. Each subcommand calls into the
//! library and turns its result into an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use substrate::config::{Config, ServeArgs};
use substrate::datadir::DataDir;
use substrate::inspect::{self, InspectCommand, InspectError, Outcome};

#[global_allocator]
static ALLOCATOR: substrate::alloc::SizeRouted = substrate::alloc::SizeRouted;

#[derive(Parser)]
#[command(name = "substrate", version, about = "Hosts web services on demand")]
struct Cli {
    /// Log format
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "SUBSTRATE_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon
    Serve(Box<ServeArgs>),
    /// Read a stopped daemon's database
    Inspect {
        /// Data directory
        #[arg(long, env = "SUBSTRATE_DATA", default_value = ".substrate")]
        data: PathBuf,
        /// Print JSON instead of tables
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: InspectCommand,
    },
    /// Service definitions: check, export, evaluate CUE
    Defs {
        #[command(subcommand)]
        command: DefsCommand,
    },
    /// Container images
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
    /// Run pending store migrations
    Migrate {
        /// Data directory
        #[arg(long, env = "SUBSTRATE_DATA", default_value = ".substrate")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum DefsCommand {
    /// Load and validate the definitions; errors as file:line:col: message
    Check {
        #[arg(long, env = "SUBSTRATE_DEFS", default_value = "defs")]
        defs: PathBuf,
    },
    /// The evaluated definitions as JSON
    Export {
        #[arg(long, env = "SUBSTRATE_DEFS", default_value = "defs")]
        defs: PathBuf,
        /// Only this service
        service: Option<String>,
    },
    /// Raw evaluation of CUE files (the subset) as JSON, like `cue export --out json`
    Eval {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Bind `@tag(KEY)` fields, like `cue -t KEY=VALUE`
        #[arg(short = 't', long = "inject", value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Build enabled imagespecs through the engine's API (all, or those named)
    Build {
        #[arg(long, env = "SUBSTRATE_DEFS", default_value = "defs")]
        defs: PathBuf,
        /// Container engine: docker or podman
        #[arg(long, env = "SUBSTRATE_ENGINE", default_value = "docker")]
        engine: String,
        /// The engine's API address [default: the engine's own]
        #[arg(long, env = "SUBSTRATE_ENGINE_HOST")]
        engine_host: Option<String>,
        /// Build context [default: the parent of the defs directory]
        #[arg(long)]
        context: Option<PathBuf>,
        names: Vec<String>,
    },
}

fn print_cue_errors(errors: &[substrate::defs::CueError]) -> ExitCode {
    for e in errors {
        eprintln!("{e}");
    }
    ExitCode::from(1)
}

fn defs_command(command: DefsCommand) -> ExitCode {
    use substrate::defs;
    let no_vars = std::collections::BTreeMap::new();
    match command {
        DefsCommand::Check { defs: dir } => match defs::load_dir(&dir, &no_vars) {
            Ok(d) => {
                let enabled = d.services.values().filter(|s| s.enabled).count();
                println!(
                    "{}: ok ({} services, {enabled} enabled, {} imagespecs)",
                    dir.display(),
                    d.services.len(),
                    d.imagespecs.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => print_cue_errors(&e),
        },
        DefsCommand::Export { defs: dir, service } => match defs::load_dir(&dir, &no_vars) {
            Ok(d) => {
                if let Some(s) = service.as_deref().filter(|s| !d.services.contains_key(*s)) {
                    eprintln!("error: no service named {s:?} is defined in {}", dir.display());
                    return ExitCode::from(1);
                }
                print!("{}", defs::to_json_string(&d.export_json(service.as_deref())));
                ExitCode::SUCCESS
            }
            Err(e) => print_cue_errors(&e),
        },
        DefsCommand::Eval { paths, tags } => match defs::eval_paths_tagged(
            &paths,
            &tags
                .iter()
                .map(|t| match t.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (t.clone(), String::new()),
                })
                .collect(),
        ) {
            Ok(v) => {
                print!("{}", defs::to_json_string(&v));
                ExitCode::SUCCESS
            }
            Err(e) => print_cue_errors(&e),
        },
    }
}

fn images_command(command: ImagesCommand) -> ExitCode {
    let ImagesCommand::Build {
        defs: dir,
        engine,
        engine_host,
        context,
        names,
    } = command;
    let engine = match engine.parse() {
        Ok(kind) => substrate::runtime::EngineSettings {
            kind,
            host: engine_host.filter(|h| !h.is_empty()),
        },
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(substrate::images::build_enabled(
        &engine,
        &dir,
        context.as_deref(),
        &names,
    )) {
        Ok(built) => {
            for image in built {
                println!("built {image}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Inspect { data, json, command } => {
            let mut stdout = std::io::stdout().lock();
            match inspect::run(&data, &command, json, &mut stdout) {
                Ok(Outcome::Clean) => ExitCode::SUCCESS,
                Ok(Outcome::Problems(_)) => ExitCode::from(1),
                Err(e @ InspectError::InUse(_)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Defs { command } => defs_command(command),
        Command::Images { command } => images_command(command),
        Command::Migrate { data } => {
            let data = DataDir::new(data);
            match substrate::daemon::open_store(&data, "default", 8 << 20).and_then(|s| Ok(s.schema_version()?)) {
                Ok(v) => {
                    println!("store at {} is at schema version {v}", data.db().display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match Config::resolve(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(substrate::daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
