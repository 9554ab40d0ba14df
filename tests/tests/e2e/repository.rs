//! The repository explains and sets itself up on its own: every link in its Markdown stays
//! inside it and resolves (anchors included); installing happens in `scripts/setup` alone,
//! which `scripts/test` runs before anything else; and a script whose tools are missing
//! stops at once, saying to run it, instead of failing later like a timeout.

use std::{
    collections::BTreeSet,
    path::{Component, Path, PathBuf},
    process::Command,
};

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds tests/")
        .to_owned()
}

/// Files git would track (committed or not, never ignored ones such as target/ or .tools/).
fn repository_files(pattern: &str) -> Vec<PathBuf> {
    let out = Command::new("git")
        .current_dir(root())
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            pattern,
        ])
        .output()
        .expect("running git");
    assert!(out.status.success(), "git ls-files: {out:?}");
    String::from_utf8(out.stdout)
        .expect("paths are UTF-8")
        .lines()
        .map(|l| root().join(l))
        .filter(|p| p.is_file())
        .collect()
}

/// The anchors a renderer gives a Markdown file's headings: lowercased, punctuation
/// dropped, spaces turned into hyphens, a repeated one numbered (`-1`, `-2`, …).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let text = heading.take().unwrap_or_default();
                let slug: String = text
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect();
                let mut candidate = slug.clone();
                let mut n = 0;
                while !found.insert(candidate.clone()) {
                    n += 1;
                    candidate = format!("{slug}-{n}");
                }
            }
            _ => {}
        }
    }
    found
}

/// `path` with `.` and `..` resolved lexically, so a link can be judged without following
/// symlinks and before asking whether it exists.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What is wrong with `link` in `file`, if anything.
fn broken(file: &Path, link: &str) -> Option<String> {
    if link.starts_with("http://127.0.0.1") || link.starts_with("http://localhost") {
        return None; // an address of the local installation, not a document
    }
    if link.contains("://") || link.starts_with("mailto:") || link.starts_with('/') {
        return Some("points outside the repository".into());
    }
    let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
    let target = if path.is_empty() {
        file.to_owned()
    } else {
        normalize(&file.parent().expect("a file has a folder").join(path))
    };
    if !target.starts_with(root()) {
        return Some("points outside the repository".into());
    }
    if !target.exists() {
        return Some(format!("{} does not exist", target.display()));
    }
    if anchor.is_empty() {
        return None;
    }
    let text = std::fs::read_to_string(&target).ok()?;
    (!anchors(&text).contains(anchor))
        .then(|| format!("{} has no heading #{anchor}", target.display()))
}

#[test]
fn every_link_in_the_markdown_resolves_inside_the_repository() {
    let files = repository_files("*.md");
    assert!(
        files.iter().any(|f| f.ends_with("docs/architecture.md")),
        "the docs are missing from {files:?}"
    );
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable Markdown");
        for event in Parser::new(&text) {
            if let Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) = event
                && let Some(problem) = broken(file, &dest_url)
            {
                problems.push(format!(
                    "{}: ({dest_url}) {problem}",
                    file.strip_prefix(root()).unwrap_or(file).display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_link_check_catches_what_it_is_for() {
    let readme = root().join("README.md");
    assert_eq!(broken(&readme, "docs/operations.md"), None);
    assert_eq!(broken(&readme, "#two-commands"), None);
    assert_eq!(broken(&readme, "http://127.0.0.1:7480"), None);
    for bad in [
        "../shared/DESIGN.md",
        "docs/../../elsewhere.md",
        "https://example.com/",
        "/etc/passwd",
        "docs/nowhere.md",
        "#no-such-heading",
    ] {
        assert!(broken(&readme, bad).is_some(), "{bad} passed");
    }
    let text = "# Walkthrough with `grpcurl`\n## Deploy, again!\n## Deploy, again!\n";
    assert_eq!(
        anchors(text),
        ["walkthrough-with-grpcurl", "deploy-again", "deploy-again-1"]
            .map(String::from)
            .into()
    );
}

#[test]
fn only_scripts_setup_installs_and_scripts_test_runs_it_first() {
    let installers = [
        "apt-get install",
        "apt install",
        "pip install",
        "pip3 install",
        "npm install",
        "npm ci",
        "cargo install",
    ];
    let mut scripts = repository_files("scripts/*");
    scripts.extend(repository_files(".ci/*"));
    for script in &scripts {
        if script.ends_with("scripts/setup") {
            continue;
        }
        let text = std::fs::read_to_string(script).unwrap_or_default();
        for installer in installers {
            assert!(
                !text.contains(installer),
                "{} runs `{installer}`: installing belongs in scripts/setup, which runs before \
                 anything looks for what it installs",
                script.display()
            );
        }
    }
    let test = std::fs::read_to_string(root().join("scripts/test")).expect("scripts/test");
    let first_command = test
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("scripts/") || l.contains("$(scripts/") || l.starts_with("cargo"))
        .expect("scripts/test runs something");
    assert_eq!(
        first_command, "scripts/setup",
        "scripts/test must set up first"
    );
}

/// A directory whose only commands are the ones named: a machine without the rest.
fn path_with_only(commands: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for command in commands {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(command))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{command} is not in /usr/bin or /bin"));
        std::os::unix::fs::symlink(found, dir.path().join(command)).expect("symlink");
    }
    dir
}

#[test]
fn a_script_whose_tools_are_missing_says_to_run_setup_at_once() {
    let bare = path_with_only(&["bash", "date", "tr", "cat"]);
    let ceph = Command::new("/bin/bash")
        .arg(root().join("scripts/ceph"))
        .arg("start")
        .env("PATH", bare.path())
        .output()
        .expect("running scripts/ceph");
    let said = String::from_utf8_lossy(&ceph.stderr);
    assert!(!ceph.status.success(), "{said}");
    for words in ["not installed: ceph-mon", "scripts/setup"] {
        assert!(said.contains(words), "`{words}` not in: {said}");
    }

    let postgres = Command::new(root().join("scripts/postgres"))
        .env("PGBIN", bare.path())
        .output()
        .expect("running scripts/postgres");
    let said = String::from_utf8_lossy(&postgres.stderr);
    assert!(!postgres.status.success(), "{said}");
    assert!(said.contains("scripts/setup"), "{said}");
}
