//! A tenant's own gRPC service, open only to engineers with a live daypass
//! grant: the whole integration in one file.
//!
//! The service here is the standard gRPC health service (any tonic service
//! works the same way). It is served over TLS whose client CAs are the
//! broker's grant CAs, and wrapped in [`RequireGrant`]: a call gets through
//! with a grant certificate (mutual TLS) or a grant token
//! (`authorization: Bearer v4.public.…`) for this tenant, is reported to the
//! broker (`RecordAccess`), and is refused otherwise. Decisions are offline;
//! if the revocation feed falls silent for 30 s, everything is refused.
//!
//! ```text
//! cargo run --example tenant_service -- \
//!     --broker https://daypass.example:7443 --broker-ca ca.pem \
//!     --cert tenant-acme.pem --key tenant-acme.key --tenant acme \
//!     --listen 0.0.0.0:9443 --tls-cert service.pem --tls-key service.key
//!
//! # an engineer, with an active grant:
//! daypass grant cert <grant id> --out .        # or: daypass grant token <grant id>
//! grpcurl -cacert service-ca.pem -cert grant-<id>.pem -key grant-<id>.key \
//!     service.example:9443 grpc.health.v1.Health/Check
//! ```
//!
//! Every flag can also be given in the environment (`DAYPASS_BROKER`, ...).

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc};

use clap::Parser;
use daypass_tenant::{
    Gateway, RequireGrant,
    clock::SystemClock,
    gateway::{BrokerIdentity, GatewayOptions, connect_broker},
    keys::KeySet,
    verifier::Verifier,
};
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming};

#[derive(Debug, Parser)]
#[command(about = "A gRPC service that admits only holders of a daypass grant")]
struct Args {
    /// The broker, https://HOST:PORT.
    #[arg(long, env = "DAYPASS_BROKER")]
    broker: String,
    /// The CA that issued the broker's server certificate.
    #[arg(long, env = "DAYPASS_BROKER_CA")]
    broker_ca: PathBuf,
    /// This tenant's client certificate for the broker (URI SAN
    /// spiffe://<trust domain>/tenant/<name>) and its key.
    #[arg(long, env = "DAYPASS_CERT")]
    cert: PathBuf,
    #[arg(long, env = "DAYPASS_KEY")]
    key: PathBuf,
    /// This tenant's name at the broker: grants for others are refused.
    #[arg(long, env = "DAYPASS_TENANT")]
    tenant: String,
    /// Where to serve.
    #[arg(long, env = "TENANT_LISTEN", default_value = "127.0.0.1:9443")]
    listen: SocketAddr,
    /// The service's own TLS server certificate and key.
    #[arg(long, env = "TENANT_TLS_CERT")]
    tls_cert: PathBuf,
    #[arg(long, env = "TENANT_TLS_KEY")]
    tls_key: PathBuf,
    /// Where the newest revocation list and every revocation seen are kept
    /// across restarts, so that a broker restored from an older backup
    /// cannot re-admit anyone (docs/integration.md §3).
    #[arg(
        long,
        env = "TENANT_REVOCATION_STATE",
        default_value = "daypass-revocations.json"
    )]
    revocation_state: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let broker = BrokerIdentity::from_files(&args.broker_ca, &args.cert, &args.key)?;
    let channel = connect_broker(&args.broker, &broker)?;
    // Waits for the broker's keys and a first revocation list; remembers
    // the lists across restarts.
    let verifier = Verifier::new(&args.tenant, KeySet::default(), Arc::new(SystemClock))
        .remembering(&args.revocation_state)?;
    let gateway =
        Gateway::start_with(Arc::new(verifier), channel, GatewayOptions::default()).await?;
    let identity = Identity::from_pem(
        std::fs::read(&args.tls_cert)?,
        std::fs::read(&args.tls_key)?,
    );
    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(tenant = args.tenant, listen = %args.listen, "serving grant holders only");
    serve(&gateway, identity, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    // Reports still queued reach the broker before we exit.
    let sent = gateway.reporter().flush().await;
    tracing::info!(?sent, "stopped");
    Ok(())
}

/// Serves the protected service on `listener` until `shutdown` resolves.
pub async fn serve(
    gateway: &Gateway,
    identity: Identity,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let tls = ServerTlsConfig::new()
        .identity(identity)
        // Grant certificates chain to the broker's grant CAs; rustls checks
        // the chain and the validity period, RequireGrant the rest (tenant,
        // revocation, expiry on the injected clock).
        .client_ca_root(Certificate::from_pem(gateway.grant_ca_pem()))
        // Token holders connect without a client certificate.
        .client_auth_optional(true);
    let (_health, service) = tonic_health::server::health_reporter();
    // Each call's resource is its gRPC method (`grpc.health.v1.health:check`),
    // so a scoped grant gets through only to the methods its scopes name.
    let require_grant: RequireGrant = gateway
        .require_grant()
        .for_resources(daypass_tenant::layer::grpc_method_resource);
    Server::builder()
        .tls_config(tls)?
        .layer(require_grant)
        .add_service(service)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
