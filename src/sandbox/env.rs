//! Which of omk's environment variables a confined process sees: a list
//! of names, never prefixes, plus what `[sandbox] env` (or a gate's `env`)
//! names exactly. The proxy variables are the sandbox's own (set by the
//! helper), never the user's, which may carry credentials.

/// What every agent and gate may see: a shell's basics, the locale, the
/// terminal and where toolchains live.
const NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "LANG",
    "LANGUAGE",
    "TZ",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_TERM_COLOR",
    "CARGO_INCREMENTAL",
    "CARGO_BUILD_JOBS",
    "RUST_BACKTRACE",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONHASHSEED",
    "NVM_DIR",
    "NVM_BIN",
    "NODE_PATH",
    "GOPATH",
    "GOROOT",
    "GOFLAGS",
    "GOTOOLCHAIN",
    "JAVA_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
];

/// What the agent backends need besides: their model's settings and keys.
/// Gates, which run agents' code but talk to no model, do not get them.
const BACKEND_NAMES: &[&str] = &[
    "KIMI_BASE_URL",
    "KIMI_API_KEY",
    "KIMI_MODEL_NAME",
    "KIMI_MODEL_MAX_CONTEXT_SIZE",
    "KIMI_MODEL_CAPABILITIES",
    "KIMI_MODEL_TEMPERATURE",
    "KIMI_MODEL_TOP_P",
    "KIMI_MODEL_MAX_COMPLETION_TOKENS",
    "KIMI_MODEL_MAX_TOKENS",
    "KIMI_MODEL_THINKING_KEEP",
    "KIMI_MODEL_API_KEY",
    "KIMI_MODEL_BASE_URL",
    "KIMI_MODEL_PROVIDER_TYPE",
    "KIMI_SHARE_DIR",
    "KIMI_CODE_HOME",
    "KIMI_CODE_CUSTOM_HEADERS",
    "KIMI_DISABLE_TELEMETRY",
    "KIMI_CLI_NO_AUTO_UPDATE",
    "KIMI_SCRIPTED_ECHO_SCRIPTS",
    "MOONSHOT_API_KEY",
    "MOONSHOT_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
];

/// Parts of a name that mark it as a credential: such a variable passes
/// only when named exactly.
const CREDENTIAL_MARKS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "COOKIE",
    "SESSION",
];

/// Whether a variable's name looks like it holds a credential.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    CREDENTIAL_MARKS.iter().any(|m| upper.contains(m))
}

/// Whether a gate may see `name` without its being named: a listed name
/// or a locale category (`LC_*`).
fn passes(name: &str) -> bool {
    NAMES.contains(&name) || (name.starts_with("LC_") && !looks_secret(name))
}

/// The part of `vars` a gate sees: the listed names and those in `extra`.
pub fn for_gate(
    vars: impl Iterator<Item = (String, String)>,
    extra: &[String],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .filter(|(k, _)| passes(k) || extra.contains(k))
        .collect();
    out.sort();
    out
}

/// The part of `vars` an agent sees: a gate's, and the backends' settings.
pub fn for_agent(
    vars: impl Iterator<Item = (String, String)>,
    extra: &[String],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .filter(|(k, _)| passes(k) || BACKEND_NAMES.contains(&k.as_str()) || extra.contains(k))
        .collect();
    out.sort();
    out
}

/// The names in `vars` that neither agents nor gates will see, for telling
/// the user (names only, never values).
pub fn withheld(vars: impl Iterator<Item = (String, String)>, extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vars
        .map(|(k, _)| k)
        .filter(|k| !passes(k) && !BACKEND_NAMES.contains(&k.as_str()) && !extra.contains(k))
        .collect();
    names.sort();
    names
}

/// Variables that configure a tool agents and gates run — a package
/// index, a compiler, its flags — which a user is likely to miss when they
/// are not passed on. A name ending in `_` is a prefix.
const TOOL_SETTINGS: &[&str] = &[
    "PIP_",
    "UV_",
    "POETRY_",
    "PIPENV_",
    "CONDA_",
    "PYTHON",
    "NPM_CONFIG_",
    "npm_config_",
    "YARN_",
    "PNPM_",
    "BUN_",
    "NODE_",
    "CARGO_REGISTRIES_",
    "CARGO_SOURCE_",
    "CARGO_NET_",
    "CARGO_HTTP_",
    "CARGO_BUILD_",
    "CARGO_TARGET_",
    "CARGO_PROFILE_",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC_WRAPPER",
    "GOPROXY",
    "GOPRIVATE",
    "GONOPROXY",
    "GONOSUMDB",
    "GOSUMDB",
    "GOINSECURE",
    "MAVEN_",
    "GRADLE_",
    "JAVA_TOOL_OPTIONS",
    "BUNDLE_",
    "GEM_",
    "COMPOSER_",
    "NUGET_",
    "CC",
    "CXX",
    "CFLAGS",
    "CXXFLAGS",
    "LDFLAGS",
    "PKG_CONFIG_PATH",
];

/// The names of `withheld` that configure a tool (`PIP_INDEX_URL`,
/// `NPM_CONFIG_REGISTRY`): what a run says it leaves out. Credentials
/// (`NODE_AUTH_TOKEN`) are not among them: they are withheld on purpose.
pub fn tool_settings(withheld: &[String]) -> Vec<String> {
    withheld
        .iter()
        .filter(|name| {
            !looks_secret(name)
                && TOOL_SETTINGS.iter().any(|t| match t.strip_suffix('_') {
                    Some(_) => name.starts_with(t),
                    None => name.as_str() == *t,
                })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(names: &[&str]) -> impl Iterator<Item = (String, String)> {
        names
            .iter()
            .map(|n| (n.to_string(), "v".to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn names_pass_prefixes_do_not() {
        let all = [
            "PATH",
            "LC_ALL",
            "CARGO_HOME",
            "CARGO_REGISTRY_TOKEN",
            "NPM_TOKEN",
            "NODE_AUTH_TOKEN",
            "GOOGLE_API_KEY",
            "HTTPS_PROXY",
            "KIMI_API_KEY",
            "XDG_RUNTIME_DIR",
        ];
        let gate: Vec<String> = for_gate(vars(&all), &[])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(gate, ["CARGO_HOME", "LC_ALL", "PATH"]);
        let agent: Vec<String> = for_agent(vars(&all), &[])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(agent, ["CARGO_HOME", "KIMI_API_KEY", "LC_ALL", "PATH"]);
        let named: Vec<String> = for_gate(vars(&all), &["NPM_TOKEN".into()])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(named.contains(&"NPM_TOKEN".to_string()));
        assert!(looks_secret("GOOGLE_CLIENT_SECRET") && !looks_secret("LANG"));
    }

    #[test]
    fn tool_settings_are_told_apart_from_the_rest_and_from_credentials() {
        let withheld: Vec<String> = [
            "PIP_INDEX_URL",
            "NPM_CONFIG_REGISTRY",
            "npm_config_cache",
            "UV_INDEX_URL",
            "CC",
            "CCACHE_DIR",
            "CARGO_NET_OFFLINE",
            "CARGO_PKG_NAME",
            "NODE_AUTH_TOKEN",
            "CARGO_REGISTRY_TOKEN",
            "XDG_RUNTIME_DIR",
            "EDITOR",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            tool_settings(&withheld),
            [
                "PIP_INDEX_URL",
                "NPM_CONFIG_REGISTRY",
                "npm_config_cache",
                "UV_INDEX_URL",
                "CC",
                "CARGO_NET_OFFLINE"
            ]
        );
    }
}
