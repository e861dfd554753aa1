//! `imprint reference`: the command-line reference in Markdown, rendered from the
//! clap definition itself so `docs/cli.md` says what the binary accepts.

use std::fmt::Write;

use clap::{Arg, ArgAction, Command};

use crate::files::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};

/// Renders `cli` (the root command) and every visible subcommand as Markdown.
pub fn markdown(mut cli: Command) -> String {
    // Building fills in what clap derives lazily: `--help`, `--version`, the full
    // `imprint key generate` names that usage lines show.
    cli.build();
    let mut out = String::new();
    let name = cli.get_name().to_string();
    writeln!(out, "# `{name}` command-line reference\n").unwrap();
    writeln!(
        out,
        "<!-- Generated from the clap definition by `{name} reference`; do not edit.\n     \
         Regenerate: IMPRINT_BLESS=1 cargo test -p imprint-cli --test cli reference -->\n"
    )
    .unwrap();
    if let Some(about) = cli.get_long_about().or(cli.get_about()) {
        writeln!(out, "{}\n", sentence(&about.to_string())).unwrap();
    }
    writeln!(
        out,
        "Exit codes, as diff(1) and cosign use them: {EXIT_OK} success; {EXIT_FINDINGS} findings \
         (an invalid document, a difference, a failed verification, an alert); {EXIT_ERROR} usage \
         or I/O error. Every command takes `-h`/`--help`, and all but `attest` (where `--version` is the profile's version) take `-V`/`--version`.\n"
    )
    .unwrap();
    let commands = visible_commands(&cli, &name);
    writeln!(out, "## Commands\n").unwrap();
    for (path, command) in &commands {
        link(path, command, &mut out);
    }
    for (path, command) in &commands {
        out.push('\n');
        section(path, command, &mut out);
    }
    out
}

/// Every visible subcommand, depth first, with its full name (`imprint key generate`).
fn visible_commands<'a>(parent: &'a Command, path: &str) -> Vec<(String, &'a Command)> {
    let mut found = Vec::new();
    for sub in parent.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let sub_path = format!("{path} {}", sub.get_name());
        found.push((sub_path.clone(), sub));
        found.extend(visible_commands(sub, &sub_path));
    }
    found
}

/// A list item linking to a command's section (GitHub's anchor for a heading
/// in backticks drops them and turns spaces into hyphens).
fn link(path: &str, command: &Command, out: &mut String) {
    let about = command
        .get_about()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let anchor = path.replace(' ', "-");
    writeln!(out, "- [`{path}`](#{anchor}): {}", sentence(&about)).unwrap();
}

/// clap drops the final period of a one-paragraph doc comment; text followed by
/// more text needs it back.
fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() || text.ends_with(['.', ':', '!', '?']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// One command: what it does, its usage line, its arguments and options.
fn section(path: &str, command: &Command, out: &mut String) {
    writeln!(out, "## `{path}`\n").unwrap();
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        writeln!(out, "{}\n", sentence(&about.to_string())).unwrap();
    }
    let usage = command.clone().render_usage().to_string();
    writeln!(out, "```text\n{}\n```", usage.trim_end()).unwrap();
    let subcommands: Vec<&Command> = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    if !subcommands.is_empty() {
        writeln!(out, "\nCommands:\n").unwrap();
        for sub in subcommands {
            link(&format!("{path} {}", sub.get_name()), sub, out);
        }
    }
    let shown: Vec<&Arg> = command
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !is_builtin(a))
        .collect();
    let (positionals, options): (Vec<&Arg>, Vec<&Arg>) =
        shown.into_iter().partition(|a| a.is_positional());
    for (title, args) in [("Arguments", positionals), ("Options", options)] {
        if args.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}:\n").unwrap();
        for arg in args {
            argument(command, arg, out);
        }
    }
    required_groups(command, out);
}

/// `--help` and `--version`, which every command has.
fn is_builtin(arg: &Arg) -> bool {
    matches!(
        arg.get_action(),
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
    )
}

/// How an argument is written: `<FILES>...` or `-o, --out <OUT>`.
fn spelling(arg: &Arg) -> String {
    let names: Vec<String> = arg
        .get_value_names()
        .map(|names| names.iter().map(|n| format!("<{n}>")).collect())
        .unwrap_or_else(|| vec![format!("<{}>", arg.get_id())]);
    let many = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
    let values = format!("{}{}", names.join(" "), if many { "..." } else { "" });
    if arg.is_positional() {
        return values;
    }
    let mut flag = String::new();
    if let Some(short) = arg.get_short() {
        flag.push_str(&format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        if !flag.is_empty() {
            flag.push_str(", ");
        }
        flag.push_str(&format!("--{long}"));
    }
    if arg.get_action().takes_values() {
        flag.push(' ');
        flag.push_str(&values);
    }
    flag
}

/// The short name used when one argument mentions another: `--key`, `<FILE>`.
fn short_spelling(arg: &Arg) -> String {
    match arg.get_long() {
        Some(long) => format!("--{long}"),
        None => spelling(arg),
    }
}

/// One argument as a list item: spelling, marks, help, then what it accepts.
fn argument(command: &Command, arg: &Arg, out: &mut String) {
    let mut marks = Vec::new();
    if arg.is_required_set() {
        marks.push("required");
    }
    // A positional's `...` already says it takes many.
    if matches!(arg.get_action(), ArgAction::Append) && !arg.is_positional() {
        marks.push("repeatable");
    }
    let marks = if marks.is_empty() {
        String::new()
    } else {
        format!(" ({})", marks.join(", "))
    };
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut item = format!("`{}`{marks}: {}", spelling(arg), sentence(&help));
    let shows_default = arg.get_action().takes_values() && !arg.is_hide_default_value_set();
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|d| format!("`{}`", d.to_string_lossy()))
        .collect();
    if shows_default && !defaults.is_empty() {
        item.push_str(&format!(" Default: {}.", defaults.join(", ")));
    }
    let conflicts: Vec<String> = command
        .get_arg_conflicts_with(arg)
        .into_iter()
        .map(|other| format!("`{}`", short_spelling(other)))
        .collect();
    if !conflicts.is_empty() {
        item.push_str(&format!(" Not with {}.", conflicts.join(", ")));
    }
    write_item(&item, out);
    possible_values(arg, out);
}

/// A list item whose text may run over several lines (long help's paragraphs).
fn write_item(text: &str, out: &mut String) {
    for (i, line) in text.lines().enumerate() {
        match (i, line.is_empty()) {
            (0, _) => writeln!(out, "- {line}").unwrap(),
            (_, true) => out.push('\n'),
            (_, false) => writeln!(out, "  {line}").unwrap(),
        }
    }
}

/// The values an argument accepts, with their help when they have one.
fn possible_values(arg: &Arg, out: &mut String) {
    if arg.is_hide_possible_values_set() {
        return;
    }
    let values: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .collect();
    if values.is_empty() {
        return;
    }
    if values.iter().all(|v| v.get_help().is_none()) {
        let names: Vec<String> = values
            .iter()
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        writeln!(out, "  Values: {}.", names.join(", ")).unwrap();
        return;
    }
    writeln!(out, "  Values:").unwrap();
    for value in values {
        match value.get_help() {
            Some(help) => writeln!(out, "  - `{}`: {help}", value.get_name()).unwrap(),
            None => writeln!(out, "  - `{}`", value.get_name()).unwrap(),
        }
    }
}

/// Groups of which one argument must be given (`--key` or `--policy`).
fn required_groups(command: &Command, out: &mut String) {
    for group in command.get_groups().filter(|g| g.is_required_set()) {
        let members: Vec<String> = group
            .get_args()
            .filter_map(|id| command.get_arguments().find(|a| a.get_id() == id))
            .map(|a| format!("`{}`", short_spelling(a)))
            .collect();
        if members.len() > 1 {
            writeln!(out, "\nOne of {} is required.", members.join(", ")).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{Arg, ArgAction, ArgGroup, Command};

    use super::markdown;

    fn sample() -> Command {
        Command::new("tool").about("A tool.").subcommand(
            Command::new("run")
                .about("Run it.")
                .long_about("Run it.\n\nAt length.")
                .arg(Arg::new("file").required(true).help("The file."))
                .arg(
                    Arg::new("level")
                        .long("level")
                        .short('l')
                        .default_value("low")
                        .value_parser(["low", "high"])
                        .help("How much"),
                )
                .arg(
                    Arg::new("tag")
                        .long("tag")
                        .action(ArgAction::Append)
                        .help("A tag."),
                )
                .arg(
                    Arg::new("key")
                        .long("key")
                        .conflicts_with("policy")
                        .help("A key."),
                )
                .arg(Arg::new("policy").long("policy").help("A policy."))
                .group(
                    ArgGroup::new("trust")
                        .args(["key", "policy"])
                        .required(true),
                ),
        )
    }

    #[test]
    fn renders_commands_arguments_defaults_values_and_groups() {
        let md = markdown(sample());
        assert!(md.starts_with("# `tool` command-line reference\n"), "{md}");
        assert!(md.contains("- [`tool run`](#tool-run): Run it.\n"), "{md}");
        assert!(
            md.contains("## `tool run`\n\nRun it.\n\nAt length.\n"),
            "{md}"
        );
        assert!(md.contains("Usage: tool run "), "{md}");
        assert!(md.contains("- `<file>` (required): The file.\n"), "{md}");
        assert!(
            md.contains(
                "- `-l, --level <level>`: How much. Default: `low`.\n  Values: `low`, `high`.\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("- `--tag <tag>` (repeatable): A tag.\n"),
            "{md}"
        );
        assert!(md.contains("A key. Not with `--policy`."), "{md}");
        assert!(
            md.contains("One of `--key`, `--policy` is required."),
            "{md}"
        );
        assert!(!md.contains("--help <"), "{md}");
    }

    #[test]
    fn hidden_commands_and_arguments_are_left_out() {
        let cli = sample().subcommand(
            Command::new("secret")
                .hide(true)
                .arg(Arg::new("x").long("x")),
        );
        let md = markdown(cli);
        assert!(!md.contains("secret"), "{md}");
        assert!(!md.contains("tool help"), "{md}");
    }
}
