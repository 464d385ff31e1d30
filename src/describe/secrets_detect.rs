//! Which variable names hold secrets. Used by import (values are dropped and
//! only the name kept) and by `secrets template`.

/// True for names such as `API_KEY`, `GITHUB_TOKEN`, `DB_PASSWORD`,
/// `JWT_SECRET`, `DATABASE_URL` or `*_DSN`, which carry credentials.
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    const SUFFIXES: [&str; 10] = [
        "_KEY",
        "_TOKEN",
        "_PASSWORD",
        "_SECRET",
        "_PASS",
        "_PASSWD",
        "_DSN",
        "_CREDENTIALS",
        "_PRIVATE_KEY",
        "_AUTH",
    ];
    const EXACT: [&str; 8] = [
        "DATABASE_URL",
        "REDIS_URL",
        "MONGODB_URI",
        "MONGO_URL",
        "SECRET_KEY",
        "PASSWORD",
        "TOKEN",
        "API_KEY",
    ];
    if n.ends_with("_PUBLIC_KEY") || n.ends_with("_KEY_ID") && !n.contains("SECRET") {
        return n.ends_with("_KEY_ID") && n.starts_with("AWS_ACCESS");
    }
    EXACT.contains(&n.as_str())
        || SUFFIXES.iter().any(|s| n.ends_with(s))
        || (n.ends_with("_URL")
            && (n.contains("DATABASE") || n.contains("POSTGRES") || n.contains("MYSQL")))
}

#[cfg(test)]
mod tests {
    use super::looks_secret;

    #[test]
    fn detects_credential_names() {
        for s in [
            "LLM_API_KEY",
            "GITHUB_TOKEN",
            "NEO4J_PASSWORD",
            "JWT_SECRET",
            "DATABASE_URL",
            "SENTRY_DSN",
            "POSTGRES_PASSWORD",
            "MINSKY_PERSISTENCE_POSTGRES_URL",
        ] {
            assert!(looks_secret(s), "{s}");
        }
        for s in [
            "PORT",
            "MODEL_CHOICE",
            "CORS_ORIGINS",
            "STRIPE_PUBLIC_KEY",
            "NODE_ENV",
        ] {
            assert!(!looks_secret(s), "{s}");
        }
    }
}
