//! The command line: serve (the default), migrate, organizations, tokens, the OpenAPI spec.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::{Config, TuningArgs, DEFAULT_BIND, DEFAULT_DATABASE_URL};
use crate::domain::Scope;
use crate::startup::Application;
use crate::store::{self, organizations, tokens};

#[derive(Debug, Parser)]
#[command(
    name = "hris-sync",
    version,
    about = "Keeps a company's user directory in step with its HR system.",
    long_about = "Keeps a company's user directory in step with its HR system.\n\n\
Without a command, serves the API (same as `hris-sync serve`). Every command that opens the \
database migrates it first."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "HRIS_SYNC_BIND", default_value = DEFAULT_BIND, global = true)]
    bind: String,
    #[command(flatten)]
    tuning: TuningArgs,
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// sqlite://PATH (the default, a file next to you) or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    database_url: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default command).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage organizations (tenants).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create an organization and print its id and an admin token as JSON.
    Create {
        /// The organization's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it as JSON; the token is shown only once.
    Create {
        /// The organization id.
        #[arg(long)]
        org: String,
        /// sync:read, sync:write or admin (each includes the ones before).
        #[arg(long)]
        scope: Scope,
        /// A name to recognise the token by, e.g. the integration using it.
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List an organization's tokens (never their secrets) as JSON.
    List {
        #[arg(long)]
        org: String,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token id (from `token list`).
        id: String,
    },
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hris-sync: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli.database.database_url;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.tuning.apply(Config::new(cli.bind, url))),
        Command::Openapi => {
            print!("{}", crate::openapi::json()?);
            Ok(())
        }
        Command::Migrate => {
            store::connect(&url, 1)?;
            println!("{}", json!({"migrated": true}));
            Ok(())
        }
        Command::Org(OrgCommand::Create { name }) => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 255 {
                bail!("the organization name must be 1 to 255 characters");
            }
            let mut conn = store::connect(&url, 1)?.get()?;
            let created = organizations::create(&mut conn, name)?;
            print_json(&json!({
                "organization_id": created.organization.id,
                "name": created.organization.name,
                "token": created.admin_token,
                "scope": Scope::Admin,
            }))
        }
        Command::Token(TokenCommand::Create { org, scope, name }) => {
            let mut conn = store::connect(&url, 1)?.get()?;
            organizations::find(&mut conn, &org)?
                .with_context(|| format!("there is no organization {org}"))?;
            let (row, secret) = tokens::create(&mut conn, &org, scope, &name)?;
            print_json(&json!({
                "organization_id": row.organization_id,
                "token_id": row.id,
                "token": secret,
                "scope": row.scope,
                "name": row.name,
            }))
        }
        Command::Token(TokenCommand::List { org }) => {
            let mut conn = store::connect(&url, 1)?.get()?;
            organizations::find(&mut conn, &org)?
                .with_context(|| format!("there is no organization {org}"))?;
            let listed: Vec<_> = tokens::list(&mut conn, &org)?
                .into_iter()
                .map(|t| {
                    json!({
                        "token_id": t.id, "name": t.name, "scope": t.scope, "created_at": t.created_at,
                        "last_used_at": t.last_used_at, "revoked_at": t.revoked_at,
                    })
                })
                .collect();
            print_json(&json!(listed))
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            let mut conn = store::connect(&url, 1)?.get()?;
            let token = tokens::revoke(&mut conn, &id)?
                .with_context(|| format!("there is no token {id}"))?;
            print_json(&json!({"token_id": token.id, "revoked_at": token.revoked_at}))
        }
    }
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init();
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)?;
        app.run_until_stopped().await
    })
}
