//! The log's read API as C2SP tlog-tiles over HTTPS (`[tiles]`,
//! docs/log-format.md §13): `checkpoint`, `tile/<L>/<N>[.p/<W>]` and
//! `tile/entries/<N>[.p/<W>]`, so stock transparency tooling and static
//! mirrors can follow the log. The gRPC proof RPCs stay; this is the same
//! tree in the spec's encoding ([`crate::service::tiles`] reads it).
//!
//! * **Who may read what** is [`crate::policy`]'s question: a client
//!   certificate from `tls.ca` is optional at the TLS layer and, when
//!   presented, verified there and admitted like a gRPC caller
//!   (`ReadTiles` for the checkpoint and hash tiles, `ReadEntryBundles` for
//!   entry bundles; a refusal is logged as `call.refused`). Without one,
//!   only the checkpoint and hash tiles, and only with
//!   `tiles.public_hashes`.
//! * **Caching** as the spec asks: tiles and bundles are immutable once
//!   served (`max-age` a year, `immutable`), the checkpoint is not
//!   (`max-age=2`); everything not public is `private`. Errors are
//!   `no-store`.
//! * **Names** are parsed strictly: one name per tile (no leading zeros,
//!   no `x000/` groups, widths 1–255), anything else is 404.

use std::sync::Arc;

use axum::{
    Router,
    extract::{ConnectInfo, Path, State, connect_info::Connected},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
    serve::IncomingStream,
};
use tokio_rustls::rustls::{ServerConfig, pki_types::CertificateDer};

use crate::{
    audit::tiles,
    identity::{ClientCa, IdentityError, Principal},
    policy::{self, Caller, TileResource},
    service::{Broker, BrokerError, ErrorCode},
    tls::{HandshakeLimits, HttpsListener},
};

/// A tile request's name, as parsed from its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`
    Hashes { level: u8, index: u64, width: u16 },
    /// `tile/entries/<N>[.p/<W>]`
    Entries { index: u64, width: u16 },
}

impl TilePath {
    /// Parses what follows `tile/`; `None` for anything not in the spec's
    /// one canonical form.
    pub fn parse(rest: &str) -> Option<TilePath> {
        let (first, tail) = rest.split_once('/')?;
        let (index, width) = parse_index(tail)?;
        if first == "entries" {
            return Some(TilePath::Entries { index, width });
        }
        let level = parse_decimal(first, 63)? as u8;
        Some(TilePath::Hashes {
            level,
            index,
            width,
        })
    }

    /// The path below the prefix, e.g. `tile/0/x001/x234/067.p/12`: the
    /// same names as a tile export ([`crate::audit::tiles`]).
    pub fn to_path(self) -> String {
        match self {
            TilePath::Hashes {
                level,
                index,
                width,
            } => tiles::tile_path(level, index, usize::from(width)),
            TilePath::Entries { index, width } => tiles::bundle_path(index, usize::from(width)),
        }
    }
}

/// A decimal with no leading zeros (but `0` itself), at most `max`.
fn parse_decimal(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= max)
}

/// `x001/x234/067[.p/<W>]`: the index and the width (256 when full).
fn parse_index(s: &str) -> Option<(u64, u16)> {
    let (groups, width) = match s.split_once(".p/") {
        Some((g, w)) => (g, parse_decimal(w, 255).filter(|w| *w >= 1)? as u16),
        None => (s, tiles::TILE_WIDTH as u16),
    };
    let parts: Vec<&str> = groups.split('/').collect();
    let (last, upper) = parts.split_last()?;
    let mut index: u64 = 0;
    for (i, part) in upper.iter().enumerate() {
        let digits = part.strip_prefix('x')?;
        // The leading group carries the number's top digits: never zero.
        if i == 0 && digits == "000" {
            return None;
        }
        index = index
            .checked_mul(1000)?
            .checked_add(three_digits(digits)?)?;
    }
    index = index.checked_mul(1000)?.checked_add(three_digits(last)?)?;
    Some((index, width))
}

fn three_digits(s: &str) -> Option<u64> {
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

#[derive(Clone)]
struct AppState {
    broker: Arc<Broker>,
    client_ca: Arc<ClientCa>,
    public_hashes: bool,
}

/// The read API's routes.
pub fn router(broker: Arc<Broker>, client_ca: Arc<ClientCa>, public_hashes: bool) -> Router {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*rest}", get(tile))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") })
        .layer(axum::middleware::map_response(common_headers))
        .with_state(AppState {
            broker,
            client_ca,
            public_hashes,
        })
}

/// Serves the read API on `listener` (TLS with `tls`) until `stop` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<ServerConfig>,
    limits: HandshakeLimits,
    broker: Arc<Broker>,
    client_ca: Arc<ClientCa>,
    public_hashes: bool,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(broker, client_ca, public_hashes);
    axum::serve(
        HttpsListener::new(listener, tls, limits, "the tile read API")?,
        app.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(stop)
    .await
}

/// The certificate chain the client presented on this connection, if any
/// (rustls has verified it against `tls.ca` in the handshake).
#[derive(Clone, Debug)]
struct Peer {
    chain: Option<Arc<Vec<CertificateDer<'static>>>>,
}

impl Connected<IncomingStream<'_, HttpsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, HttpsListener>) -> Self {
        let chain = stream
            .io()
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| Arc::new(c.iter().map(|d| d.clone().into_owned()).collect()));
        Peer { chain }
    }
}

/// Who reads, if anyone needs to be known: `Ok(None)` for an anonymous
/// read the operator allows.
async fn admit(
    state: &AppState,
    peer: &Peer,
    what: TileResource,
) -> Result<Option<Caller>, Response> {
    if policy::may_read_tiles_anonymously(what, state.public_hashes) {
        return Ok(None);
    }
    let Some(chain) = &peer.chain else {
        return Err(error(
            StatusCode::FORBIDDEN,
            match what {
                TileResource::EntryBundle => {
                    "entry bundles are the whole log: present an auditor's or an admin's client \
                     certificate from this server's CA"
                }
                _ => {
                    "present a client certificate from this server's CA (or the operator sets \
                     tiles.public_hashes)"
                }
            },
        ));
    };
    let principal = principal(&state.client_ca, chain, state.broker.trust_domain());
    state
        .broker
        .admit(principal, what.action())
        .await
        .map(Some)
        .map_err(broker_error)
}

fn principal(
    ca: &ClientCa,
    chain: &[CertificateDer<'static>],
    trust_domain: &str,
) -> Result<Principal, IdentityError> {
    let leaf = chain.first().ok_or(IdentityError::NoCertificate)?;
    ca.issued_directly(chain)?;
    Principal::from_certificate(leaf.as_ref(), trust_domain)
}

async fn checkpoint(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
) -> Response {
    if let Err(r) = admit(&state, &peer, TileResource::Checkpoint).await {
        return r;
    }
    match state.broker.tile_checkpoint() {
        Ok(cp) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            [(
                header::CACHE_CONTROL,
                cache(state.public_hashes, "max-age=2"),
            )],
            cp.note.to_string(),
        )
            .into_response(),
        Err(e) => broker_error(e),
    }
}

async fn tile(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(rest): Path<String>,
) -> Response {
    let Some(path) = TilePath::parse(&rest) else {
        return error(
            StatusCode::NOT_FOUND,
            "not a tile name (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], C2SP tlog-tiles)",
        );
    };
    let (what, public) = match path {
        TilePath::Hashes { .. } => (TileResource::HashTile, state.public_hashes),
        TilePath::Entries { .. } => (TileResource::EntryBundle, false),
    };
    let caller = match admit(&state, &peer, what).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match (path, &caller) {
        (
            TilePath::Hashes {
                level,
                index,
                width,
            },
            _,
        ) => state.broker.hash_tile(level, index, width),
        (TilePath::Entries { index, width }, Some(caller)) => {
            state.broker.entry_bundle(caller, index, width).await
        }
        // Entry bundles are never anonymous (policy), so admit named a caller.
        (TilePath::Entries { .. }, None) => Err(BrokerError::PermissionDenied(
            "entry bundles need a client certificate".into(),
        )),
    };
    match body {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            [(
                header::CACHE_CONTROL,
                cache(public, "max-age=31536000, immutable"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => broker_error(e),
    }
}

fn cache(public: bool, age: &str) -> String {
    format!("{}, {age}", if public { "public" } else { "private" })
}

/// The one mapping of broker errors to HTTP statuses for this face.
fn broker_error(e: BrokerError) -> Response {
    let status = match e.code() {
        ErrorCode::Unauthenticated | ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorCode::InvalidArgument | ErrorCode::OutOfRange => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists | ErrorCode::FailedPrecondition => StatusCode::CONFLICT,
        ErrorCode::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    match &e {
        BrokerError::Store(detail) => {
            tracing::error!(%detail, "the tile read API could not read the store");
            error(status, "the store could not be read; retry later")
        }
        _ => error(status, &e.to_string()),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!("{message}\n"),
    )
        .into_response()
}

async fn common_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(level: u8, index: u64, width: u16) -> Option<TilePath> {
        Some(TilePath::Hashes {
            level,
            index,
            width,
        })
    }

    #[test]
    fn tile_names_are_the_spec_s_and_only_those() {
        // The spec's example index.
        assert_eq!(
            TilePath::parse("0/x001/x234/067"),
            hashes(0, 1_234_067, 256)
        );
        assert_eq!(
            TilePath::parse("entries/x001/x234/067.p/8"),
            Some(TilePath::Entries {
                index: 1_234_067,
                width: 8
            })
        );
        assert_eq!(TilePath::parse("1/000"), hashes(1, 0, 256));
        assert_eq!(TilePath::parse("2/000.p/1"), hashes(2, 0, 1));
        assert_eq!(TilePath::parse("63/x001/000"), hashes(63, 1000, 256));
        for bad in [
            "0/0",                      // not three digits
            "0/x000/067",               // a leading zero group
            "0/067/x001",               // x on the last group
            "0/001/067",                // no x on an upper group
            "00/000",                   // a level with a leading zero
            "64/000",                   // a level beyond 63
            "0/000.p/0",                // width 0
            "0/000.p/256",              // width beyond 255
            "0/000.p/01",               // a width with a leading zero
            "0/000.p/",                 // no width
            "0/x18446744073709551/615", // too many digits for u64
            "entries",
            "entries/",
            "0/",
            "x/000",
            "0/000/",
        ] {
            assert_eq!(TilePath::parse(bad), None, "{bad}");
        }
        // The largest index round-trips.
        let max = hashes(0, u64::MAX, 256).unwrap();
        assert_eq!(TilePath::parse(&max.to_path()["tile/".len()..]), Some(max));
    }

    #[test]
    fn paths_round_trip() {
        for (p, s) in [
            (hashes(0, 0, 256), "tile/0/000"),
            (hashes(0, 1_234_067, 256), "tile/0/x001/x234/067"),
            (hashes(1, 273, 17), "tile/1/273.p/17"),
            (
                Some(TilePath::Entries {
                    index: 1000,
                    width: 3,
                }),
                "tile/entries/x001/000.p/3",
            ),
        ] {
            let p = p.unwrap();
            assert_eq!(p.to_path(), s);
            assert_eq!(TilePath::parse(&s["tile/".len()..]), Some(p));
        }
    }
}
