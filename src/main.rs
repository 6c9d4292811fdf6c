//! The `substrate` command line: wiring only. Each subcommand calls into the
//! library and turns its result into an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use substrate::config::{Config, ServeArgs};
use substrate::datadir::DataDir;
use substrate::inspect::{self, InspectCommand, InspectError, Outcome};

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
    Serve(ServeArgs),
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
    /// Run pending store migrations
    Migrate {
        /// Data directory
        #[arg(long, env = "SUBSTRATE_DATA", default_value = ".substrate")]
        data: PathBuf,
    },
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
        Command::Serve(args) => serve(args),
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
