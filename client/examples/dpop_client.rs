//! A DPoP client from the command line: gets a DPoP-bound token with client credentials,
//! calls a resource with it, answering the nonces of both servers, and prints the status and
//! the body.
//!
//! ```sh
//! cargo run -p tower-dpop-client --features reqwest,native-tls --example dpop_client -- \
//!     --token-endpoint https://as.example.com/token \
//!     --client-id my-client --client-secret my-secret \
//!     --resource https://api.example.com/api/me \
//!     [--method GET|POST --data '{"a":1}'] [--alg ES256] [--scope read]
//! ```
//!
//! A new key is generated for each run (its thumbprint is printed on stderr).

use std::sync::Arc;

use tower_dpop_client::{Algorithm, DpopKey, DpopOutcome, DpopReqwest, TokenClient};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    pub resource: String,
    pub method: reqwest::Method,
    pub data: Option<String>,
    pub alg: Algorithm,
    pub scope: Option<String>,
}

const USAGE: &str = "usage: dpop_client --token-endpoint URL --client-id ID --client-secret S \
--resource URL [--method GET|POST --data JSON] [--alg ES256|ES384|EdDSA|PS256|RS256] [--scope S]";

impl Args {
    /// Parses the arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut args = args.into_iter();
        let (mut token_endpoint, mut client_id, mut client_secret, mut resource) =
            (None, None, None, None);
        let (mut method, mut data, mut alg, mut scope) =
            (reqwest::Method::GET, None, Algorithm::ES256, None);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--token-endpoint" => token_endpoint = Some(value()?),
                "--client-id" => client_id = Some(value()?),
                "--client-secret" => client_secret = Some(value()?),
                "--resource" => resource = Some(value()?),
                "--method" => {
                    method = match value()?.to_ascii_uppercase().as_str() {
                        "GET" => reqwest::Method::GET,
                        "POST" => reqwest::Method::POST,
                        other => return Err(format!("--method: GET or POST, not {other}")),
                    }
                }
                "--data" => data = Some(value()?),
                "--alg" => alg = value()?.parse().map_err(|e| format!("--alg: {e}"))?,
                "--scope" => scope = Some(value()?),
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other}\n{USAGE}")),
            }
        }
        let need =
            |v: Option<String>, name: &str| v.ok_or_else(|| format!("{name} is required\n{USAGE}"));
        Ok(Self {
            token_endpoint: need(token_endpoint, "--token-endpoint")?,
            client_id: need(client_id, "--client-id")?,
            client_secret: need(client_secret, "--client-secret")?,
            resource: need(resource, "--resource")?,
            method,
            data,
            alg,
            scope,
        })
    }
}

/// Gets a token and calls the resource; the status and body of the answer, and whether the
/// resource server's nonce made the client retry.
pub async fn run(args: &Args) -> Result<(reqwest::StatusCode, String, bool), BoxError> {
    let key = DpopKey::generate(args.alg)?;
    eprintln!("key: {} {}", key.algorithm(), key.thumbprint());
    let http = reqwest::Client::new();
    let mut tokens = TokenClient::builder(
        &args.token_endpoint,
        &args.client_id,
        &args.client_secret,
        key,
    );
    if let Some(scope) = &args.scope {
        tokens = tokens.scope(scope);
    }
    let tokens = Arc::new(tokens.build(http.clone())?);
    let client = DpopReqwest::new(http, tokens);

    let mut request = client.inner().request(args.method.clone(), &args.resource);
    if let Some(data) = &args.data {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(data.clone());
    }
    let response = client.execute(request.build()?).await?;
    let retried = response
        .extensions()
        .get::<DpopOutcome>()
        .is_some_and(DpopOutcome::retried);
    let status = response.status();
    Ok((status, response.text().await?, retried))
}

#[tokio::main]
async fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    match run(&args).await {
        Ok((status, body, _)) => {
            println!("{status}");
            println!("{body}");
            if !status.is_success() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
