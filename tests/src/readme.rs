//! The commands a Markdown file tells a reader to run, taken from it and run as written.

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Output},
};

/// A shell command block from a markdown file, between `<!-- NAME:start -->` and
/// `<!-- NAME:end -->`: the commands of its `sh` fences, with backslash continuations and
/// multi-line quoted arguments joined, and comment-only lines dropped.
pub fn markdown_commands(markdown: &str, name: &str) -> Vec<String> {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let section = markdown
        .split(&start)
        .nth(1)
        .and_then(|s| s.split(&end).next())
        .unwrap_or_default();
    let mut commands = Vec::new();
    let mut in_fence = false;
    let mut current = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            in_fence = line.starts_with("```sh") && !in_fence;
            continue;
        }
        if !in_fence
            || (current.is_empty()
                && (line.trim().is_empty() || line.trim_start().starts_with('#')))
        {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                // A quoted argument may span lines (a JSON body); the command ends when
                // every quote is closed.
                if current.matches('\'').count().is_multiple_of(2) {
                    commands.push(std::mem::take(&mut current));
                } else {
                    current.push('\n');
                }
            }
        }
    }
    commands
}

/// Runs `commands` (a README block, from [`markdown_commands`]) one by one in bash in `dir`
/// with `env`, as a reader pastes them: `export NAME=…` adds NAME to `env` for the later
/// ones; a command marked `# fails: WORDS` must fail saying WORDS with a
/// `google.rpc.BadRequest` detail; every other one must succeed. With `api`, each
/// `localhost:7070` is that address instead. Panics naming the command that went wrong.
pub fn run_walkthrough(
    dir: &Path,
    env: &mut BTreeMap<String, String>,
    commands: &[String],
    api: Option<&str>,
) {
    let both = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    for command in commands {
        let line = match api {
            Some(api) => command.replace("localhost:7070", api),
            None => command.clone(),
        };
        if let Some(assignment) = command.trim_start().strip_prefix("export ") {
            let name = assignment.split('=').next().expect("NAME=").to_owned();
            let out = run_shell(
                dir,
                env,
                &format!("set -o pipefail\n{line}\nprintf '%s' \"${name}\""),
            );
            assert!(out.status.success(), "{command}\n{}", both(&out));
            let value = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(!value.is_empty(), "{command} set nothing");
            env.insert(name, value);
            continue;
        }
        let out = run_shell(dir, env, &line);
        match command.split("# fails: ").nth(1) {
            Some(expected) => {
                assert!(!out.status.success(), "expected a failure: {command}");
                for said in [expected.trim(), "google.rpc.BadRequest"] {
                    assert!(both(&out).contains(said), "{command}\n{}", both(&out));
                }
            }
            None => assert!(out.status.success(), "{command}\n{}", both(&out)),
        }
    }
}

/// Environment variables a sequence of `export NAME=...` commands would set, evaluated by
/// bash in `dir` with `env` (so `$(...)` works as a reader's shell would run it).
pub fn run_shell(dir: &Path, env: &BTreeMap<String, String>, script: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .envs(env)
        .output()
        .expect("running bash")
}
