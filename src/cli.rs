//! The command line: serve (the default), migrate, organizations, tokens, the OpenAPI spec.
//! `--org` takes an organization's name or id everywhere ([`resolve_organization`]).

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::{Config, TuningArgs, DEFAULT_BIND, DEFAULT_DATABASE_URL};
use crate::domain::Scope;
use crate::startup::Application;
use crate::store::models::OrganizationRow;
use crate::store::{self, organizations, tokens, DbConn};

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
    /// Read or replace an organization's provisioning settings.
    #[command(subcommand)]
    Settings(SettingsCommand),
}

#[derive(Debug, Subcommand)]
enum SettingsCommand {
    /// Print the organization's provisioning settings as JSON.
    Get {
        /// The organization's id or name.
        #[arg(long)]
        org: String,
    },
    /// Replace the organization's provisioning settings by a JSON document (the whole
    /// document; keys left out take their defaults). Prints every problem and changes nothing
    /// when the document is not valid.
    Set {
        /// The organization's id or name.
        #[arg(long)]
        org: String,
        /// The JSON file; standard input when left out.
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create an organization and print its id and an admin token as JSON.
    Create {
        /// The organization's name (unique: `--org` accepts it).
        name: String,
    },
    /// List the organizations (id, name, created_at) as JSON; never their tokens.
    List,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it as JSON; the token is shown only once.
    Create {
        /// The organization's name or id (`hris-sync org list` shows them).
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
        /// The organization's name or id.
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
            if !organizations::find_by_id_or_name(&mut conn, name)?.is_empty() {
                bail!("an organization is already named or identified {name:?}; names are unique so that --org can take one");
            }
            let created = organizations::create(&mut conn, name)?;
            print_json(&json!({
                "organization_id": created.organization.id,
                "name": created.organization.name,
                "token": created.admin_token,
                "scope": Scope::Admin,
            }))
        }
        Command::Org(OrgCommand::List) => {
            let mut conn = store::connect(&url, 1)?.get()?;
            let listed: Vec<_> = organizations::list(&mut conn)?
                .into_iter()
                .map(|o| json!({"organization_id": o.id, "name": o.name, "created_at": o.created_at}))
                .collect();
            print_json(&json!(listed))
        }
        Command::Token(TokenCommand::Create { org, scope, name }) => {
            let mut conn = store::connect(&url, 1)?.get()?;
            let org = resolve_organization(&mut conn, &org)?.id;
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
            let org = resolve_organization(&mut conn, &org)?.id;
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
        Command::Settings(command) => settings_command(&url, command),
        Command::Token(TokenCommand::Revoke { id }) => {
            let mut conn = store::connect(&url, 1)?.get()?;
            let token = tokens::revoke(&mut conn, &id)?
                .with_context(|| format!("there is no token {id}"))?;
            print_json(&json!({"token_id": token.id, "revoked_at": token.revoked_at}))
        }
    }
}

fn settings_command(url: &str, command: SettingsCommand) -> anyhow::Result<()> {
    let mut conn = store::connect(url, 1)?.get()?;
    match command {
        SettingsCommand::Get { org } => {
            let organization_id = resolve_organization(&mut conn, &org)?.id;
            let current = store::settings::current(&mut conn, &organization_id)?;
            print_json(&serde_json::to_value(&current.settings)?)
        }
        SettingsCommand::Set { org, file } => {
            let organization_id = resolve_organization(&mut conn, &org)?.id;
            let text = match &file {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => std::io::read_to_string(std::io::stdin())
                    .context("cannot read the settings from standard input")?,
            };
            let document: serde_json::Value =
                serde_json::from_str(&text).context("the settings are not JSON")?;
            let settings =
                crate::domain::ProvisioningSettings::parse(&document).map_err(|errors| {
                    let lines: Vec<String> = errors
                        .iter()
                        .map(|e| {
                            format!(
                                "  {}: {}",
                                if e.pointer.is_empty() {
                                    "/"
                                } else {
                                    &e.pointer
                                },
                                e.detail
                            )
                        })
                        .collect();
                    anyhow::anyhow!(
                        "the settings are not valid; nothing was changed:\n{}",
                        lines.join("\n")
                    )
                })?;
            let replaced =
                store::settings::replace(&mut conn, &organization_id, &settings, None, "cli")?;
            let current = match replaced {
                store::settings::Replaced::Changed(current)
                | store::settings::Replaced::Unchanged(current) => current,
                store::settings::Replaced::Stale { .. } => {
                    bail!("the settings changed meanwhile; try again")
                }
            };
            print_json(
                &json!({"organization_id": organization_id, "version": current.version, "settings": current.settings}),
            )
        }
    }
}

/// The organization a `--org` value names: its id, or its name. Every command taking `--org`
/// goes through here, so that the same words work everywhere.
pub fn resolve_organization(conn: &mut DbConn, key: &str) -> anyhow::Result<OrganizationRow> {
    let mut found = organizations::find_by_id_or_name(conn, key)?;
    match found.len() {
        0 => bail!(
            "there is no organization {key:?} (by name or id); `hris-sync org list` shows them"
        ),
        1 => Ok(found.remove(0)),
        _ => {
            let ids: Vec<String> = found.into_iter().map(|o| o.id).collect();
            bail!(
                "several organizations are named {key:?}; use one's id: {}",
                ids.join(", ")
            )
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
