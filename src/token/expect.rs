//! The issuers and audiences a validator accepts, configured the same way for every validator:
//! each `issuer(..)` / `audience(..)` call adds a value, and leaving either list empty is a
//! configuration error unless `any_issuer()` / `any_audience()` says so explicitly.

use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::token::TokenError;

/// What the builder collected for one of the two lists.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wanted {
    values: Vec<String>,
    any: bool,
}

impl Wanted {
    pub(crate) fn push(&mut self, value: String) {
        self.values.push(value);
    }

    pub(crate) fn set_any(&mut self) {
        self.any = true;
    }

    /// The configured list, or `None` for "any"; an error when neither or both were asked for.
    fn resolve(
        self,
        missing: &'static str,
        both: &'static str,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        match (self.values.is_empty(), self.any) {
            (true, false) => Err(ConfigError::new(missing)),
            (false, true) => Err(ConfigError::new(both)),
            (true, true) => Ok(None),
            (false, false) => Ok(Some(self.values)),
        }
    }
}

/// The accepted issuers and audiences; `None` accepts any.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    issuers: Option<Vec<String>>,
    audiences: Option<Vec<String>>,
}

impl Expected {
    /// Resolves the builder's lists.
    pub(crate) fn from_wanted(issuers: Wanted, audiences: Wanted) -> Result<Self, ConfigError> {
        Ok(Self {
            issuers: issuers.resolve(
                "no issuer configured: call issuer(..) with the authorization server's issuer \
                 identifier (the tokens' iss), or any_issuer() if the authorization server is \
                 the only one whose tokens can reach this validator",
                "both issuer(..) and any_issuer() were called: keep one",
            )?,
            audiences: audiences.resolve(
                "no audience configured: call audience(..) with this resource server's \
                 identifier (RFC 9068 §4: the token's aud must name it), or any_audience() if \
                 the authorization server issues tokens for this resource server alone",
                "both audience(..) and any_audience() were called: keep one",
            )?,
        })
    }

    /// `true` when `iss` is a configured issuer (exact string equality), or any is accepted.
    pub(crate) fn accepts_issuer(&self, iss: Option<&str>) -> bool {
        match &self.issuers {
            None => true,
            Some(issuers) => iss.is_some_and(|iss| issuers.iter().any(|i| i == iss)),
        }
    }

    /// The configured issuers; `None` when any is accepted.
    pub(crate) fn issuers(&self) -> Option<&[String]> {
        self.issuers.as_deref()
    }

    /// `iss` equal to a configured issuer (exact string equality) and `aud` (a string or an
    /// array of strings) holding a configured audience.
    pub(crate) fn check(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        if !self.accepts_issuer(claims.get("iss").and_then(Value::as_str)) {
            return Err(TokenError::invalid("access token issuer is not accepted"));
        }
        if let Some(audiences) = &self.audiences {
            let configured = |v: &str| audiences.iter().any(|a| a == v);
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => configured(aud),
                Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(configured),
                _ => false,
            };
            if !ok {
                return Err(TokenError::invalid("access token audience is not accepted"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wanted(values: &[&str], any: bool) -> Wanted {
        let mut w = Wanted::default();
        values.iter().for_each(|v| w.push((*v).to_owned()));
        if any {
            w.set_any();
        }
        w
    }

    #[test]
    fn lists_must_be_given_or_waived_not_both() {
        let ok = Expected::from_wanted(wanted(&["a"], false), wanted(&["b"], false));
        assert!(ok.is_ok());
        let any = Expected::from_wanted(wanted(&[], true), wanted(&[], true));
        assert!(any.is_ok());
        for (iss, aud, says) in [
            (wanted(&[], false), wanted(&["b"], false), "no issuer"),
            (wanted(&["a"], false), wanted(&[], false), "no audience"),
            (wanted(&["a"], true), wanted(&["b"], false), "any_issuer"),
            (wanted(&["a"], false), wanted(&["b"], true), "any_audience"),
        ] {
            let err = Expected::from_wanted(iss, aud).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn issuer_exact_and_audience_string_or_array() {
        let e = Expected::from_wanted(
            wanted(&["https://as"], false),
            wanted(&["api", "api2"], false),
        )
        .unwrap();
        let check = |v: serde_json::Value| e.check(v.as_object().unwrap()).is_ok();
        assert!(check(json!({"iss": "https://as", "aud": "api"})));
        assert!(check(json!({"iss": "https://as", "aud": ["x", "api2"]})));
        assert!(
            !check(json!({"iss": "https://as/", "aud": "api"})),
            "exact iss"
        );
        assert!(
            !check(json!({"iss": "https://as", "aud": "API"})),
            "exact aud"
        );
        assert!(!check(json!({"iss": "https://as"})), "aud required");
        assert!(!check(json!({"aud": "api"})), "iss required");
        assert!(!check(json!({"iss": "https://as", "aud": [1, "x"]})));
        let any = Expected::from_wanted(wanted(&[], true), wanted(&[], true)).unwrap();
        assert!(any.check(json!({}).as_object().unwrap()).is_ok());
    }
}
