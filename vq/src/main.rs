//! `vq`: REST endpoints, MCP tools and a dashboard for vectorize_quant's quantization,
//! beside PostgreSQL like PostgREST. All logic stays in the extension's SQL API; `vq`
//! resolves collections (qhnsw indexes), binds parameters and maps errors.

mod dashboard;
mod error;
mod mcp;
mod openapi;
mod rest;
mod sampler;
mod service;
mod svg;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "vq",
    version,
    about = "REST, MCP and a dashboard for vectorize_quant"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// REST API and dashboard over HTTP.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on (loopback unless told otherwise).
        #[arg(long, default_value = "127.0.0.1:8686", env = "VQ_LISTEN")]
        listen: String,
        /// Largest request body in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        max_body_bytes: usize,
        /// Seconds between samples of qhnsw_stat_indexes (live QPS/latency).
        #[arg(long, default_value_t = 2.0)]
        sample_interval: f64,
        /// Also serve the MCP tools over streamable HTTP at /mcp.
        #[arg(long)]
        mcp_http: bool,
    },
    /// MCP server over stdio.
    Mcp {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    /// libpq-style URL or key=value string; choose a non-superuser role.
    #[arg(long, env = "VQ_DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Bearer token required by write operations (none: writes are disabled).
    #[arg(long, env = "VQ_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Refuse every write operation (and open read-only transactions).
    #[arg(long)]
    read_only: bool,
    /// Allow connecting as a superuser (refused by default).
    #[arg(long)]
    allow_superuser: bool,
    /// Connections in the pool.
    #[arg(long, default_value_t = 8)]
    pool_size: usize,
    /// statement_timeout of every connection (PostgreSQL syntax, e.g. 300s).
    #[arg(long, default_value = "300s")]
    statement_timeout: String,
    /// sample_queries of the dashboard's quantization_stats.
    #[arg(long, default_value_t = 50)]
    dashboard_sample_queries: i32,
}

/// Builds the pool, checks the role, and returns the shared Service.
async fn connect(c: &Common) -> anyhow::Result<service::Service> {
    let mut cfg = tokio_postgres::Config::from_str(&c.database_url)
        .context("--database-url is not a valid connection string")?;
    if c.statement_timeout
        .contains(|ch: char| !ch.is_ascii_alphanumeric())
    {
        bail!("--statement-timeout must look like 300s or 5min");
    }
    let mut options = format!("-c statement_timeout={}", c.statement_timeout);
    if c.read_only {
        options.push_str(" -c default_transaction_read_only=on");
    }
    cfg.options(&options);
    if cfg.get_application_name().is_none() {
        cfg.application_name("vq");
    }
    let mgr = Manager::from_config(
        cfg,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(mgr)
        .max_size(c.pool_size.max(1))
        .build()
        .context("cannot build the connection pool")?;
    check_role(&pool, c.allow_superuser).await?;
    Ok(service::Service {
        pool,
        settings: Arc::new(service::Settings {
            token: c.token.clone().filter(|t| !t.is_empty()),
            read_only: c.read_only,
            dashboard_sample_queries: c.dashboard_sample_queries,
        }),
        sampler: Arc::new(sampler::Sampler::default()),
        cache: Arc::new(tokio::sync::Mutex::new(dashboard::Cache::default())),
    })
}

/// Connects once: the extension must be installed and the role must not be a superuser.
async fn check_role(pool: &Pool, allow_superuser: bool) -> anyhow::Result<()> {
    let client = pool
        .get()
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?;
    let row = client
        .query_one(
            "SELECT current_user::text, rolsuper,
                    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vectorize_quant')
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    let (role, superuser, ext): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
    if superuser && !allow_superuser {
        bail!("role {role:?} is a superuser: connect as a less privileged role (or pass --allow-superuser)");
    }
    if !ext {
        bail!("the vectorize_quant extension is not installed in this database (CREATE EXTENSION vectorize_quant)");
    }
    eprintln!("vq: connected as {role}");
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Serve {
            common,
            listen,
            max_body_bytes,
            sample_interval,
            mcp_http,
        } => serve(common, listen, max_body_bytes, sample_interval, mcp_http).await,
        Command::Mcp { common } => match connect(&common).await {
            Ok(s) => mcp::serve_stdio(s).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = r {
        eprintln!("vq: error: {e:#}");
        std::process::exit(2);
    }
}

/// Runs the HTTP server and the counter sampler.
async fn serve(
    common: Common,
    listen: String,
    max_body_bytes: usize,
    sample_interval: f64,
    mcp_http: bool,
) -> anyhow::Result<()> {
    if !(0.1..=3600.0).contains(&sample_interval) {
        bail!("--sample-interval must be between 0.1 and 3600 seconds");
    }
    let service = connect(&common).await?;
    let sampler = service.sampler.clone();
    let pool = service.pool.clone();
    tokio::spawn(async move {
        sampler
            .run(pool, Duration::from_secs_f64(sample_interval))
            .await
    });
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("vq: listening on http://{}", listener.local_addr()?);
    let mut app = rest::router(service.clone(), max_body_bytes);
    if mcp_http {
        app = app.nest_service("/mcp", mcp::http_service(service));
        eprintln!("vq: MCP over streamable HTTP at /mcp");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
