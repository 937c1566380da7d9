//! A scenario without processes is refused, not run as an empty success.

use std::process::Command;

use mkipc::scenario::parse;

#[test]
fn an_empty_file_is_refused() {
    for text in [
        "",
        "\n",
        "name = \"nothing\"\n",
        "[[mailbox]]\nname = \"m\"\ncapacity = 1\n",
    ] {
        let e = parse("empty.toml", text).expect_err(text);
        assert!(e.message.contains("no processes"), "{e}");
        assert!(e.headline().starts_with("empty.toml:1:1: "), "{e}");
    }
}

#[test]
fn running_an_empty_file_exits_2() {
    let dir = std::env::temp_dir().join(format!("mkipc-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("empty.toml");
    std::fs::write(&file, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .arg("run")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no processes"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("result: ok"));
}
