//! Pull requests through GitHub's REST API: where the API is, whose token,
//! which repository — found as `gh` and GitHub Actions find them.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::DeliverError;
use crate::state::PullRequest;

/// The public API; `GITHUB_API_URL` names another (GitHub Enterprise).
const DEFAULT_API: &str = "https://api.github.com";

/// Where a GitHub token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `GH_TOKEN`.
    GhToken,
    /// `GITHUB_TOKEN`.
    GithubToken,
    /// The output of `gh auth token`.
    GhCli,
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenSource::GhToken => "GH_TOKEN",
            TokenSource::GithubToken => "GITHUB_TOKEN",
            TokenSource::GhCli => "`gh auth token`",
        })
    }
}

/// A repository on GitHub and the means to open pull requests in it.
#[derive(Debug, Clone)]
pub struct GitHub {
    /// The API's base URL, without a trailing slash.
    pub(super) api: String,
    pub(super) token: String,
    /// How the token was found.
    pub token_source: TokenSource,
    /// `owner/name`.
    pub repo: String,
}

/// An API answer that was not a success: what was being done, the status
/// and GitHub's message, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What went wrong, in words.
    pub message: String,
    /// The HTTP status, when GitHub answered.
    pub status: Option<u16>,
    /// How long GitHub asked to wait before asking again (`Retry-After`,
    /// or the rate limit's reset).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// A task that asked did not end.
    pub(super) fn task(why: String) -> ApiError {
        ApiError::said(format!("asking GitHub: {why}"))
    }

    fn said(message: String) -> ApiError {
        ApiError {
            message,
            status: None,
            retry_after: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl GitHub {
    /// Finds the API, a token and the repository (`GH_REPO`, else from
    /// `remote_url`), reading `env` as the process environment.
    pub fn find(
        env: impl Fn(&str) -> Option<String>,
        remote: &str,
        remote_url: &str,
    ) -> Result<GitHub, Vec<DeliverError>> {
        let mut errors = Vec::new();
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let token = match (set("GH_TOKEN"), set("GITHUB_TOKEN")) {
            (Some(t), _) => Some((t, TokenSource::GhToken)),
            (None, Some(t)) => Some((t, TokenSource::GithubToken)),
            (None, None) => gh_auth_token().map(|t| (t, TokenSource::GhCli)),
        };
        if token.is_none() {
            errors.push(DeliverError::NoToken);
        }
        let repo = match set("GH_REPO") {
            Some(r) => parse_owner_name(r.trim()).or_else(|| {
                errors.push(DeliverError::BadGhRepo(r.clone()));
                None
            }),
            None => repo_from_url(remote_url).or_else(|| {
                errors.push(DeliverError::NotGitHub {
                    remote: remote.to_string(),
                    url: remote_url.to_string(),
                });
                None
            }),
        };
        match (token, repo) {
            (Some((token, token_source)), Some(repo)) if errors.is_empty() => Ok(GitHub {
                api: set("GITHUB_API_URL")
                    .unwrap_or_else(|| DEFAULT_API.to_string())
                    .trim_end_matches('/')
                    .to_string(),
                token: token.trim().to_string(),
                token_source,
                repo,
            }),
            _ => Err(errors),
        }
    }

    /// Opens a pull request from `head` into `base`, or updates the open
    /// one from the same head (its title and body).
    pub fn open_or_update(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
        draft: bool,
    ) -> Result<PullRequest, ApiError> {
        let agent = agent();
        let pulls = format!("{}/repos/{}/pulls", self.api, self.repo);
        let owner = self.repo.split('/').next().unwrap_or_default();
        let open: Vec<Pull> = self.answer(
            self.authorized(agent.get(&pulls))
                .query("head", format!("{owner}:{head}"))
                .query("state", "open")
                .call(),
            "listing the open pull requests",
        )?;
        let existing = match open.into_iter().next() {
            Some(pull) => pull.number,
            None => {
                let opened = self.answer::<Pull>(
                    self.with_auth(agent.post(&pulls)).send_json(json!({
                        "title": title, "head": head, "base": base, "body": body, "draft": draft,
                    })),
                    "opening the pull request",
                );
                match opened {
                    Ok(new) => {
                        return Ok(PullRequest {
                            number: new.number,
                            url: new.html_url,
                            created: true,
                        })
                    }
                    // "A pull request already exists" for this head, which
                    // the search by head did not find (its owner is not the
                    // repository's): found among the open ones, and updated.
                    Err(e) if e.status == Some(422) && e.message.contains("already exists") => {
                        let open: Vec<Pull> = self.answer(
                            self.authorized(agent.get(&pulls))
                                .query("state", "open")
                                .query("per_page", "100")
                                .call(),
                            "finding the pull request that already exists",
                        )?;
                        open.into_iter()
                            .find(|p| p.head.as_ref().is_some_and(|h| h.name == head))
                            .ok_or(e)?
                            .number
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let pull: Pull = self.answer(
            self.with_auth(agent.patch(&format!("{pulls}/{existing}")))
                .send_json(json!({ "title": title, "body": body })),
            "updating the pull request",
        )?;
        Ok(PullRequest {
            number: pull.number,
            url: pull.html_url,
            created: false,
        })
    }

    /// A request without a body, with the token and GitHub's headers.
    pub(super) fn authorized(
        &self,
        request: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        request
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    pub(super) fn with_auth(
        &self,
        request: ureq::RequestBuilder<ureq::typestate::WithBody>,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        request
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    /// The decoded answer, or what GitHub said went wrong.
    pub(super) fn answer<T: serde::de::DeserializeOwned>(
        &self,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        doing: &str,
    ) -> Result<T, ApiError> {
        let text = self.answer_text(sent, doing, 10 * 1024 * 1024)?;
        serde_json::from_str(&text).map_err(|e| {
            ApiError::said(format!(
                "{doing}: GitHub's answer is not what was expected: {e}"
            ))
        })
    }

    /// The answer's text, read up to `limit` bytes, or what GitHub said
    /// went wrong.
    pub(super) fn answer_text(
        &self,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        doing: &str,
        limit: u64,
    ) -> Result<String, ApiError> {
        let mut response =
            sent.map_err(|e| ApiError::said(format!("{doing}: {} unreachable: {e}", self.api)))?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        // Asked to wait: `Retry-After`, or an exhausted rate limit's reset.
        let retry_after = header("retry-after").map(Duration::from_secs).or_else(|| {
            (header("x-ratelimit-remaining") == Some(0))
                .then(|| header("x-ratelimit-reset"))
                .flatten()
                .map(|reset| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    Duration::from_secs(reset.saturating_sub(now).max(1))
                })
        });
        let text = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_string()
            .map_err(|e| ApiError::said(format!("{doing}: reading GitHub's answer: {e}")))?;
        if !status.is_success() {
            return Err(ApiError {
                message: format!(
                    "{doing}: GitHub answered {}: {}",
                    status.as_u16(),
                    github_message(&text)
                ),
                status: Some(status.as_u16()),
                retry_after,
            });
        }
        Ok(text)
    }
}

/// The HTTP client every request goes through.
pub(super) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .user_agent(concat!("omk/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

#[derive(Debug, Deserialize)]
struct Pull {
    number: u64,
    html_url: String,
    #[serde(default)]
    head: Option<PullHead>,
}

#[derive(Debug, Deserialize)]
struct PullHead {
    #[serde(rename = "ref")]
    name: String,
}

/// GitHub's `message`, with the `errors` it lists, or the raw text.
fn github_message(text: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return crate::words::clip(text.trim(), 300);
    };
    let mut message = value["message"]
        .as_str()
        .unwrap_or("(no message)")
        .to_string();
    let details: Vec<String> = value["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            e["message"].as_str().map(str::to_string).or_else(|| {
                e["code"]
                    .as_str()
                    .map(|c| format!("{} {c}", e["field"].as_str().unwrap_or("field")))
            })
        })
        .collect();
    if !details.is_empty() {
        message += &format!(" ({})", details.join("; "));
    }
    message
}

/// `gh auth token`'s output, when `gh` is installed and logged in.
fn gh_auth_token() -> Option<String> {
    let out = std::process::Command::new("gh")
        .args(["auth", "token"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !token.is_empty()).then_some(token)
}

/// `owner/name` if `text` is one.
fn parse_owner_name(text: &str) -> Option<String> {
    let text = text.trim_end_matches('/').trim_end_matches(".git");
    let (owner, name) = text.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (ok(owner) && ok(name)).then(|| format!("{owner}/{name}"))
}

/// The `owner/name` of a remote URL in its https or ssh forms
/// (`https://host/o/r.git`, `ssh://git@host/o/r`, `git@host:o/r.git`).
pub fn repo_from_url(url: &str) -> Option<String> {
    let path = if let Some((scheme, rest)) = url.split_once("://") {
        if scheme == "file" {
            return None;
        }
        // `[user@]host[:port]/owner/name`
        rest.split_once('/')?.1
    } else {
        // scp-like `user@host:owner/name`; a local path has no host.
        let (host, path) = url.split_once(':')?;
        if host.is_empty() || host.contains('/') {
            return None;
        }
        path
    };
    parse_owner_name(path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_is_read_from_every_url_form() {
        for url in [
            "https://github.com/acme/widgets.git",
            "https://token@github.com/acme/widgets",
            "ssh://git@github.com:22/acme/widgets.git",
            "git@github.com:acme/widgets.git",
            "https://ghe.example.com/acme/widgets/",
        ] {
            assert_eq!(repo_from_url(url).as_deref(), Some("acme/widgets"), "{url}");
        }
        for url in [
            "/srv/git/widgets.git",
            "file:///srv/widgets.git",
            "../widgets",
            "https://github.com/acme",
        ] {
            assert_eq!(repo_from_url(url), None, "{url}");
        }
    }

    #[test]
    fn tokens_are_taken_in_gh_order_and_everything_missing_is_said_at_once() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let gh = GitHub::find(
            env(&[("GH_TOKEN", "a"), ("GITHUB_TOKEN", "b"), ("GH_REPO", "o/r")]),
            "origin",
            "/x",
        )
        .unwrap();
        assert_eq!(
            (gh.token.as_str(), gh.token_source),
            ("a", TokenSource::GhToken)
        );
        assert_eq!(gh.api, DEFAULT_API);
        let gh = GitHub::find(
            env(&[
                ("GITHUB_TOKEN", "b"),
                ("GITHUB_API_URL", "http://127.0.0.1:9/api/v3/"),
            ]),
            "origin",
            "git@github.com:o/r.git",
        )
        .unwrap();
        assert_eq!(
            (gh.token_source, gh.repo.as_str()),
            (TokenSource::GithubToken, "o/r")
        );
        assert_eq!(gh.api, "http://127.0.0.1:9/api/v3");
        let errors = GitHub::find(env(&[("GH_TOKEN", "a")]), "origin", "/srv/r.git").unwrap_err();
        assert!(
            matches!(errors.as_slice(), [DeliverError::NotGitHub { .. }]),
            "{errors:?}"
        );
    }

    #[test]
    fn github_messages_are_shown_with_their_details() {
        let text = r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"invalid","field":"base"}]}"#;
        assert_eq!(github_message(text), "Validation Failed (base invalid)");
        assert_eq!(github_message("Bad gateway"), "Bad gateway");
    }
}
