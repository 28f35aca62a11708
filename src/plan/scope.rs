//! Write scopes: the path patterns a slice may change, checked, matched,
//! turned into sparse cones, and warned about when they match nothing.

use super::*;

pub(super) fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.starts_with('/') {
        return Err(format!(
            "`{pattern}` is absolute; patterns are repository-relative"
        ));
    }
    if pattern.split('/').any(|part| part == "..") {
        return Err(format!("`{pattern}` leaves the repository with `..`"));
    }
    if pattern.starts_with('~') {
        return Err(format!(
            "`{pattern}` names a home directory; patterns are repository-relative"
        ));
    }
    // The repository's own git directory (hooks, config, refs) is nobody's
    // to write, in any case spelling a case-insensitive disk accepts.
    if pattern
        .split('/')
        .any(|part| part.eq_ignore_ascii_case(".git"))
    {
        return Err(format!(
            "`{pattern}` names `.git`, which no slice may write; drop it from the write scope"
        ));
    }
    scope_glob(pattern).map(|_| ())
}

fn scope_glob(pattern: &str) -> Result<Glob, String> {
    // `dir/` means everything below `dir`.
    let pattern = match pattern.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => pattern.to_string(),
    };
    GlobBuilder::new(&pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("`{pattern}` is not a valid glob: {e}"))
}

/// The directories a sparse checkout of a slice with `write_scope` needs,
/// `include` added: `None` when a pattern does not start with a literal
/// directory (`**/*.rs`, `*/x`), which no cone can hold. Files at the top of
/// the repository are in every cone, so `README.md` or `*.md` need nothing.
pub fn cone(write_scope: &[String], include: &[String]) -> Option<Vec<String>> {
    let mut dirs = Vec::new();
    for pattern in write_scope {
        // `dir/` means everything below `dir`.
        let (pattern, below) = match pattern.strip_suffix('/') {
            Some(dir) => (dir, true),
            None => (pattern.as_str(), false),
        };
        let parts: Vec<&str> = pattern.split('/').collect();
        let literal = parts
            .iter()
            .take_while(|p| !p.contains(['*', '?', '[', '{', '\\']))
            .count();
        let dir = match literal {
            // A path: the directory it is in, or itself for `dir/`.
            n if n == parts.len() && below => parts.join("/"),
            n if n == parts.len() => parts[..n - 1].join("/"),
            // A top-level glob that cannot cross `/` (`*.md`).
            0 if parts.len() == 1 && !parts[0].contains("**") => String::new(),
            0 => return None,
            n => parts[..n].join("/"),
        };
        if !dir.is_empty() {
            dirs.push(dir);
        }
    }
    dirs.extend(
        include
            .iter()
            .map(|d| d.trim_end_matches('/').to_string())
            .filter(|d| !d.is_empty()),
    );
    dirs.sort();
    dirs.dedup();
    Some(dirs)
}

/// Warnings for write scopes that match no file at the base (`tracked`)
/// and look like typos: one below a directory that does not exist
/// (`tset/**`), or a file whose name is a slip away from a file beside it
/// (`src/tiem.py` next to `src/item.py`). A new file in an existing
/// directory is what many scopes are for, and is not warned about. Two
/// passes over the files, whatever the number of scopes.
pub fn scope_warnings(plan: &Plan, tracked: &[String]) -> Vec<String> {
    let mut builder = GlobSetBuilder::new();
    let mut owners = Vec::new();
    for s in &plan.slices {
        for pattern in &s.write_scope {
            if let Ok(glob) = scope_glob(pattern) {
                builder.add(glob);
                owners.push((s.id.as_str(), pattern.as_str()));
            }
        }
    }
    let Ok(set) = builder.build() else {
        return Vec::new();
    };
    let mut matched = vec![false; owners.len()];
    let mut dirs = std::collections::HashSet::new();
    for path in tracked {
        for i in set.matches(path.as_str()) {
            matched[i] = true;
        }
        let mut at = path.as_str();
        while let Some((dir, _)) = at.rsplit_once('/') {
            if !dirs.insert(dir) {
                break;
            }
            at = dir;
        }
    }
    // The unmatched scopes that name one file in an existing directory,
    // by directory, to compare with the files there.
    let mut files_in: HashMap<&str, Vec<(usize, &str)>> = HashMap::new();
    let mut warnings: Vec<(usize, String)> = Vec::new();
    for (i, (slice, pattern)) in owners.iter().enumerate().filter(|(i, _)| !matched[*i]) {
        // The literal directory the pattern starts with.
        let literal = pattern
            .split(['*', '?', '[', '{'])
            .next()
            .unwrap_or_default();
        let dir = literal.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
        if !dir.is_empty() && !dirs.contains(dir) {
            warnings.push((i, format!(
                "slice `{slice}`: write scope `{pattern}` matches no file, and `{dir}/` does not exist at the base; the slice can only create it (a typo?)"
            )));
        } else if literal == *pattern && !pattern.ends_with('/') {
            let name = pattern.rsplit_once('/').map_or(*pattern, |(_, n)| n);
            files_in.entry(dir).or_default().push((i, name));
        }
    }
    if !files_in.is_empty() {
        let mut near: HashMap<usize, &str> = HashMap::new();
        for path in tracked {
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            for (i, wanted) in files_in.get(dir).into_iter().flatten() {
                if !near.contains_key(i) && is_slip(wanted, name) {
                    near.insert(*i, path);
                }
            }
        }
        for (i, path) in near {
            let (slice, pattern) = owners[i];
            warnings.push((i, format!(
                "slice `{slice}`: write scope `{pattern}` matches no file at the base, but `{path}` is there (a typo?)"
            )));
        }
    }
    warnings.sort();
    warnings.into_iter().map(|(_, w)| w).collect()
}

/// Whether `b` is `a` with a slip of the keyboard: one character added,
/// dropped, changed or two swapped (two such slips in names of eight
/// characters or more).
pub(super) fn is_slip(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let allowed = if a.len().min(b.len()) >= 8 { 2 } else { 1 };
    if a == b || a.len().abs_diff(b.len()) > allowed {
        return false;
    }
    // Optimal string alignment distance, over three rows.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()] <= allowed
}

/// A compiled write scope.
#[derive(Debug, Clone)]
pub struct WriteScope(GlobSet);

impl WriteScope {
    /// Compiles validated patterns.
    pub fn new(patterns: &[String]) -> Result<WriteScope, String> {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(scope_glob(p)?);
        }
        builder.build().map(WriteScope).map_err(|e| e.to_string())
    }

    /// A scope that allows nothing.
    pub fn empty() -> WriteScope {
        WriteScope(GlobSet::empty())
    }

    /// Whether `path` is inside the scope.
    pub fn contains(&self, path: &str) -> bool {
        self.0.is_match(path)
    }

    /// The paths that fall outside the scope.
    pub fn violations<'a>(&self, paths: &'a [String]) -> Vec<&'a String> {
        paths
            .iter()
            .filter(|p| !self.0.is_match(p.as_str()))
            .collect()
    }
}
