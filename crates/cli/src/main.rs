//! `suanli`: the command line. Parses arguments and calls the libraries;
//! holds no logic of its own.

mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "suanli",
    version,
    about = "Run WebAssembly GPU jobs, sandboxed and metered, locally or on a cluster"
)]
struct Cli {
    #[command(flatten)]
    connection: commands::connect::Connection,
    /// Log lines as text or as JSON objects (stderr; RUST_LOG sets the level).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a job crate (outside any workspace) from a template.
    New(commands::new::Args),
    /// Run a job locally in the same sandbox and GPU service a provider node uses.
    Run(commands::run::Args),
    /// Measure sandbox overhead (job vs native wgpu) and cold vs warm start.
    Bench(commands::bench::Args),
    /// Start a coordinator.
    Coordinator(commands::coordinator::Args),
    /// List this machine's GPU adapters with the index `node --gpu N` takes.
    Gpus(commands::gpus::Args),
    /// Attach this machine's GPU to a coordinator as a provider node (or `node drain NAME`).
    Node(commands::node::Args),
    /// Submit a job to the coordinator.
    Submit(commands::submit::Args),
    /// Show a job.
    Status(commands::jobs::StatusArgs),
    /// Download a job's output (waits for the job to finish).
    Result(commands::jobs::ResultArgs),
    /// Show a job's log.
    Logs(commands::jobs::LogsArgs),
    /// Cancel a job.
    Cancel(commands::jobs::CancelArgs),
    /// List your jobs (all jobs for an admin).
    Jobs(commands::jobs::ListArgs),
    /// List connected nodes (admin).
    Nodes(commands::jobs::NodesArgs),
    /// Install a client file (from `token create --client-config`) as the default or a --profile.
    Login(commands::login::Args),
    /// Manage tokens (admin).
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// GPU-class prices (set and node classes: admin).
    #[command(subcommand)]
    Price(commands::billing::PriceCommand),
    /// Tenant credit limits (admin).
    #[command(subcommand)]
    Tenant(commands::billing::TenantCommand),
    /// GPU-seconds, wall-seconds, attempts and cost: your own as a tenant, your nodes' with --provider, all as admin.
    Usage(commands::billing::UsageArgs),
    /// An itemised monthly invoice (per job, per attempt).
    Invoice(commands::billing::InvoiceArgs),
    /// Operator checks, backups and restores (admin).
    #[command(subcommand)]
    Admin(commands::admin::AdminCommand),
    /// Start a coordinator and two nodes in this process, run the examples, print results and GPU time.
    Demo(commands::demo::Args),
    /// Print a shell completion script.
    Completions(commands::completions::CompletionArgs),
    /// Write man pages (one per command) into a directory.
    Man(commands::completions::ManArgs),
    /// A node's slot worker (started by `suanli node`, speaks on stdin/stdout).
    #[command(hide = true)]
    Worker,
}

/// How log lines are written (on stderr).
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs on stderr. Without `RUST_LOG`, the coordinator and the node log
/// what an operator wants to see (registrations, jobs starting and ending,
/// reconnects) and other commands only warnings.
fn init_logging(format: LogFormat, server: bool) {
    let default = if server {
        "warn,suanli_coordinator=info,suanli_node=info,suanli=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    // Server config files become flags before parsing (see server_config).
    let argv = match commands::server_config::expand(std::env::args_os().collect(), &Cli::command())
    {
        Ok(argv) => argv,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(argv);
    let server = matches!(cli.command, Command::Coordinator(_))
        || matches!(&cli.command, Command::Node(args) if args.is_serve());
    init_logging(cli.log_format, server);
    let conn = cli.connection;
    let result = match cli.command {
        Command::New(args) => commands::new::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Coordinator(args) => commands::block_on(commands::coordinator::run(args)),
        Command::Gpus(args) => commands::gpus::run(args),
        Command::Node(args) => commands::block_on(commands::node::run(args, conn)),
        Command::Submit(args) => commands::block_on(commands::submit::run(args, conn)),
        Command::Status(args) => commands::block_on(commands::jobs::status(args, conn)),
        Command::Result(args) => commands::block_on(commands::jobs::result(args, conn)),
        Command::Logs(args) => commands::block_on(commands::jobs::logs(args, conn)),
        Command::Cancel(args) => commands::block_on(commands::jobs::cancel(args, conn)),
        Command::Jobs(args) => commands::block_on(commands::jobs::list(args, conn)),
        Command::Nodes(args) => commands::block_on(commands::jobs::nodes(args, conn)),
        Command::Login(args) => commands::login::run(args, &conn),
        Command::Token(cmd) => commands::block_on(commands::token::run(cmd, conn)),
        Command::Price(cmd) => commands::block_on(commands::billing::price(cmd, conn)),
        Command::Tenant(cmd) => commands::block_on(commands::billing::tenant(cmd, conn)),
        Command::Usage(args) => commands::block_on(commands::billing::usage(args, conn)),
        Command::Invoice(args) => commands::block_on(commands::billing::invoice(args, conn)),
        Command::Admin(cmd) => commands::block_on(commands::admin::run(cmd, conn)),
        Command::Demo(args) => commands::block_on(commands::demo::run(args)),
        Command::Completions(args) => commands::completions::completions(args, Cli::command()),
        Command::Man(args) => commands::completions::man(args, Cli::command()),
        Command::Worker => return suanli_node::worker_main(),
    };
    tracing::debug!("exiting");
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Arguments of `cmd` and its subcommands that have no help text.
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            if arg
                .get_help()
                .is_none_or(|h| h.to_string().trim().is_empty())
            {
                out.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_about().is_none() {
                out.push(format!("{path} {} (no about)", sub.get_name()));
            }
            undocumented(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_command_and_argument_has_help() {
        let cmd = super::Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        undocumented(&cmd, "suanli", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
