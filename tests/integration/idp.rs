//! Access tokens shaped as Okta, Auth0, Keycloak, PingFederate and Entra ID issue them, signed
//! by an independent JOSE implementation (`tests/vectors/idp/`, node `jose`), verified with an
//! injected clock: accepted with the configuration `docs/identity-providers.md` documents,
//! refused where they must be, and read with `client_id()` and `scopes()`.

use http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;
use tower_dpop::clock::ManualClock;
use tower_dpop::testing::{request_parts, ClientKey};
use tower_dpop::token::jwt::{JwtValidator, JwtValidatorBuilder};
use tower_dpop::token::{TokenError, TokenValidator};
use tower_dpop::{Algorithm, DpopLayer, Error, ErrorKind};

const ORIGIN: &str = "https://api.example.com";
const BAD_SIGNATURE: &str = "access token signature is invalid or its key is unknown";
const ENTRA_AUDIENCE: &str = "api://6e74172b-be56-4843-9ff4-e66a39bb12e3";

struct Fixtures(Value);

impl Fixtures {
    fn load() -> Self {
        let path = format!("{}/tests/vectors/idp/idp.json", env!("CARGO_MANIFEST_DIR"));
        Self(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
    }

    fn now(&self) -> u64 {
        self.0["now"].as_u64().unwrap()
    }

    fn issuer(&self, idp: &str) -> &str {
        self.0["issuers"][idp]["issuer"].as_str().unwrap()
    }

    fn jwks(&self, idp: &str) -> String {
        self.0["issuers"][idp]["jwks"].to_string()
    }

    fn token(&self, name: &str) -> &str {
        self.0["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no fixture {name}"))["token"]
            .as_str()
            .unwrap()
    }

    fn client(&self) -> ClientKey {
        let jwk = self.0["client"]["private_jwk"].to_string();
        ClientKey::from_jwk(Algorithm::ES256, &jwk).unwrap()
    }

    /// The documented validator of each identity provider, on this fixture's key set (a
    /// deployment discovers it with `discover(issuer)` instead of `jwks_json`).
    fn documented(&self, idp: &str) -> JwtValidatorBuilder {
        let b = JwtValidator::builder()
            .jwks_json(&self.jwks(idp))
            .issuer(self.issuer(idp));
        match idp {
            "okta" => b.audience("api://default").algorithms([Algorithm::RS256]),
            "okta_org" => b.audience(self.issuer("okta_org")),
            "auth0" => b.audience(ORIGIN).algorithms([Algorithm::RS256]),
            "keycloak" => b.audience(ORIGIN).algorithms([Algorithm::RS256]),
            "pingfederate" => b.audience(ORIGIN).algorithms([Algorithm::PS256]),
            "entra" => b.audience(ENTRA_AUDIENCE).algorithms([Algorithm::RS256]),
            other => panic!("{other}"),
        }
    }

    fn layer(&self, validator: impl TokenValidator, bearer: bool) -> DpopLayer {
        DpopLayer::builder()
            .public_origin(ORIGIN)
            .token_validator(validator)
            .clock(ManualClock::at_unix(self.now()))
            .allow_bearer(bearer)
            .build()
            .unwrap()
    }

    fn dpop_headers(&self, token: &str) -> HeaderMap {
        let proof = self
            .client()
            .proof("GET", &format!("{ORIGIN}/orders"))
            .access_token(token)
            .iat(self.now())
            .sign();
        tower_dpop::testing::dpop_headers(token, &proof)
    }
}

fn bearer_headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

async fn send(layer: &DpopLayer, headers: &HeaderMap) -> Result<tower_dpop::Authenticated, Error> {
    layer
        .authenticate(&request_parts(&Method::GET, "/orders", headers))
        .await
}

fn invalid(reason: &str) -> Result<(), TokenError> {
    Err(TokenError::invalid(reason.to_owned()))
}

async fn check(v: &JwtValidator, token: &str) -> Result<(), TokenError> {
    v.validate(token).await.map(|_| ())
}

struct Accepted {
    fixture: &'static str,
    idp: &'static str,
    client_id: &'static str,
    scopes: &'static [&'static str],
}

#[rustfmt::skip]
const ACCEPTED: &[Accepted] = &[
    Accepted { fixture: "okta_custom_as", idp: "okta", client_id: "0oa8f5j3ecb5w3dF35d7", scopes: &["openid", "profile", "orders:read"] },
    Accepted { fixture: "auth0_default", idp: "auth0", client_id: "Hk3Y2mB8q9ZtLQwX4nPv7sRdA1cE6uJo", scopes: &["openid", "profile", "read:orders"] },
    Accepted { fixture: "auth0_rfc9068", idp: "auth0", client_id: "Hk3Y2mB8q9ZtLQwX4nPv7sRdA1cE6uJo", scopes: &["read:orders"] },
    Accepted { fixture: "keycloak_audience_mapper", idp: "keycloak", client_id: "orders-app", scopes: &["openid", "orders:read"] },
    Accepted { fixture: "pingfederate_jwt", idp: "pingfederate", client_id: "orders-app", scopes: &["orders:read", "orders:write"] },
];

/// Each DPoP-bound token, with a proof of the client key it is bound to, through the layer
/// configured as documented; its client and scopes read as each vendor sends them.
#[tokio::test]
async fn each_idp_token_is_accepted_with_its_documented_configuration() {
    let f = Fixtures::load();
    for case in ACCEPTED {
        let layer = f.layer(f.documented(case.idp).build().unwrap(), false);
        let token = f.token(case.fixture);
        let ok = send(&layer, &f.dpop_headers(token))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.fixture));
        let verified = ok.dpop().expect("a DPoP request");
        assert_eq!(
            verified.jkt().to_base64url(),
            f.0["client"]["jkt"].as_str().unwrap()
        );
        let t = verified.token();
        assert_eq!(t.client_id(), Some(case.client_id), "{}", case.fixture);
        assert_eq!(t.scopes(), case.scopes, "{}", case.fixture);
    }
}

/// Entra ID issues no RFC 9449 tokens: its token (no `cnf`) works under Bearer, when the
/// layer accepts Bearer, and is refused under DPoP.
#[tokio::test]
async fn an_entra_token_works_with_bearer_only() {
    let f = Fixtures::load();
    let token = f.token("entra_v2");
    let bearer_layer = f.layer(f.documented("entra").build().unwrap(), true);
    let ok = send(&bearer_layer, &bearer_headers(token)).await.unwrap();
    assert!(ok.dpop().is_none());
    let t = ok.token().expect("a token");
    assert_eq!(
        t.client_id(),
        Some("9b1c6e4f-6f2d-4e47-8a8b-2f1c0d3e5a7b"),
        "azp"
    );
    assert_eq!(t.scopes(), ["Orders.Read", "Orders.Write"], "scp, a string");

    for layer in [
        &bearer_layer,
        &f.layer(f.documented("entra").build().unwrap(), false),
    ] {
        let err = send(layer, &f.dpop_headers(token)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TokenNotBound, "{err}");
        assert_eq!(err.status(), 401);
    }
    let dpop_only = f.layer(f.documented("entra").build().unwrap(), false);
    let err = send(&dpop_only, &bearer_headers(token)).await.unwrap_err();
    assert_eq!(err.status(), 401, "{err}");
}

/// What each vendor's token must not get past.
#[tokio::test]
async fn idp_tokens_are_refused_where_they_must_be() {
    let f = Fixtures::load();
    // An Okta org authorization server token: refused by name, even with its own keys,
    // issuer and audience.
    let org = f.documented("okta_org").build().unwrap();
    assert_eq!(
        check(&org, f.token("okta_org_as")).await,
        invalid(
            "access token typ is application/okta-internal-at+jwt: a token of an Okta org \
             authorization server, which Okta does not support validating outside Okta; use a \
             custom authorization server"
        )
    );
    // Keycloak without an audience mapper: `aud` is `account`, not this API.
    let keycloak = f.documented("keycloak").build().unwrap();
    assert_eq!(
        check(&keycloak, f.token("keycloak_default")).await,
        invalid("access token audience is not accepted")
    );
    assert!(check(&keycloak, f.token("keycloak_audience_mapper"))
        .await
        .is_ok());
    // Another API's audience; the strict RFC 9068 typ; another issuer's configuration.
    let other_api = JwtValidator::builder()
        .jwks_json(&f.jwks("auth0"))
        .issuer(f.issuer("auth0"))
        .audience("https://other-api.example.com")
        .build()
        .unwrap();
    for fixture in ["auth0_default", "auth0_rfc9068"] {
        assert_eq!(
            check(&other_api, f.token(fixture)).await,
            invalid("access token audience is not accepted"),
            "{fixture}"
        );
    }
    let strict = f
        .documented("auth0")
        .require_at_jwt_typ(true)
        .build()
        .unwrap();
    assert!(check(&strict, f.token("auth0_rfc9068")).await.is_ok());
    assert_eq!(
        check(&strict, f.token("auth0_default")).await,
        invalid(
            "access token typ is not at+jwt (RFC 9068 section 2.1), which this validator requires"
        )
    );
    let okta = f.documented("okta").build().unwrap();
    assert_eq!(
        check(&okta, f.token("auth0_rfc9068")).await,
        invalid("access token issuer is not accepted")
    );
    // PingFederate signs with PS256 here: an RS256-only list refuses it before any key.
    let rs256_only = f
        .documented("pingfederate")
        .algorithms([Algorithm::RS256])
        .build();
    assert!(
        rs256_only.is_err(),
        "the PS256 key set has no key for RS256"
    );
}

/// Several issuers in one validator: the token's `iss` picks its issuer's keys, so a token
/// that claims Auth0 but is signed with Keycloak's key is refused, whichever `kid` it names;
/// an issuer none of them accepts is refused before any key is looked up.
#[tokio::test]
async fn several_issuers_each_with_its_own_keys() {
    let f = Fixtures::load();
    let all = JwtValidator::for_issuers(
        ["okta", "auth0", "keycloak", "pingfederate", "entra"]
            .map(|idp| f.documented(idp).build().unwrap()),
    )
    .unwrap();
    for case in ACCEPTED {
        let t = all.validate(f.token(case.fixture)).await;
        let t = t.unwrap_or_else(|e| panic!("{}: {e}", case.fixture));
        assert_eq!(t.client_id(), Some(case.client_id), "{}", case.fixture);
    }
    assert!(check(&all, f.token("entra_v2")).await.is_ok());
    // Through the layer, as a client would send them.
    let layer = f.layer(all.clone(), false);
    for fixture in ["okta_custom_as", "auth0_rfc9068", "pingfederate_jwt"] {
        assert!(
            send(&layer, &f.dpop_headers(f.token(fixture)))
                .await
                .is_ok(),
            "{fixture}"
        );
    }

    // Claims Auth0, signed by Keycloak's key: under Keycloak's kid (not in Auth0's set) and
    // under Auth0's kid (in the set, but the signature is not Auth0's).
    for forged in [
        "auth0_claimed_signed_by_keycloak",
        "auth0_claimed_signed_by_keycloak_with_auth0_kid",
    ] {
        assert_eq!(
            check(&all, f.token(forged)).await,
            invalid(BAD_SIGNATURE),
            "{forged}"
        );
        let err = send(&layer, &f.dpop_headers(f.token(forged)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TokenInvalid, "{forged}: {err}");
    }
    // The same token is good for Keycloak's keys: only the issuer chose the key set.
    let keycloak_keys_for_auth0 = JwtValidator::builder()
        .jwks_json(&f.jwks("keycloak"))
        .issuer(f.issuer("auth0"))
        .audience(ORIGIN)
        .build()
        .unwrap();
    assert!(
        check(
            &keycloak_keys_for_auth0,
            f.token("auth0_claimed_signed_by_keycloak")
        )
        .await
        .is_ok(),
        "the forged token is well signed, by the other issuer"
    );

    // An issuer nobody configured.
    let two = JwtValidator::for_issuers([
        f.documented("auth0").build().unwrap(),
        f.documented("keycloak").build().unwrap(),
    ])
    .unwrap();
    assert_eq!(
        check(&two, f.token("okta_custom_as")).await,
        invalid("access token issuer is not accepted")
    );
}

/// `for_issuers` needs each issuer named once.
#[test]
fn several_issuers_configuration_errors() {
    let f = Fixtures::load();
    let auth0 = || f.documented("auth0").build().unwrap();
    let any = JwtValidator::builder()
        .jwks_json(&f.jwks("keycloak"))
        .any_issuer()
        .audience(ORIGIN)
        .build()
        .unwrap();
    for (validators, says) in [
        (vec![], "no validator"),
        (vec![auth0(), any.clone()], "accepts any issuer"),
        (vec![auth0(), auth0()], "accepted by two validators"),
    ] {
        let err = JwtValidator::for_issuers(validators)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{err}");
    }
    assert!(
        JwtValidator::for_issuers([any]).is_ok(),
        "alone, any issuer is fine"
    );
}
