//! The simulator's runs of every bundled example (and of the files in
//! `tests/pins/`, which use what the examples do not), pinned: trace hash and
//! report, per seed, and a short exploration of each. The hashes were
//! computed with the interpreter as it was before scripts became state
//! machines (`ScriptMachine`), so this test proves the refactor changed no
//! scheduling point, no operation and no figure. A change that is meant to
//! change a trace updates the table (print it with
//! `MKIPC_PRINT_PINS=1 cargo test -p mkipc --test sim_pins -- --nocapture`).

use mkipc::explore::{explore, Engine, ExploreOptions};
use mkipc::scenario::{parse, run_sim, RunOptions};
use mkipc::sim::SchedulerKind;

/// 64-bit FNV-1a, as the trace's own hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Seeds run for each example: the scenario's own (`None`), then these.
const SEEDS: [Option<u64>; 4] = [None, Some(1), Some(2), Some(99)];

/// One line per example: name, then per seed (trace hash, report hash),
/// then the exploration's hash.
fn pins() -> Vec<String> {
    let mut lines = Vec::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pins");
    let mut files: Vec<(String, String)> = mkipc::bundled::SCENARIOS
        .iter()
        .map(|b| (b.file(), b.text.to_string()))
        .collect();
    let mut extra: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    extra.sort();
    for p in extra {
        let name = format!("pins/{}", p.file_name().unwrap().to_str().unwrap());
        files.push((name, std::fs::read_to_string(&p).unwrap()));
    }
    for (file, text) in &files {
        let scn = parse(file, text).unwrap();
        let mut line = file.clone();
        for seed in SEEDS {
            for scheduler in [None, Some(SchedulerKind::pct())] {
                let opts = RunOptions {
                    seed,
                    scheduler: scheduler.clone(),
                    replay: None,
                };
                let out = run_sim(&scn, &opts).unwrap();
                let json = serde_json::to_string(&out.result).unwrap();
                let series = format!("{:?}", out.series);
                line.push_str(&format!(
                    " {:016x}/{:016x}/{:016x}",
                    out.report.trace.hash(),
                    fnv1a(json.as_bytes()),
                    fnv1a(series.as_bytes())
                ));
            }
        }
        let opts = ExploreOptions {
            seeds: 40,
            jobs: 1,
            ..ExploreOptions::default()
        };
        let seeded = explore(&scn, &opts).unwrap();
        let opts = ExploreOptions {
            exhaustive: Some(6),
            max_runs: 200,
            jobs: 1,
            // The simulator's own search: these pins are about the simulator.
            engine: Engine::Stateless,
            ..ExploreOptions::default()
        };
        let exhaustive = explore(&scn, &opts).unwrap();
        line.push_str(&format!(
            " explore:{:016x}",
            fnv1a(format!("{}{}", old_debug(&seeded), old_debug(&exhaustive)).as_bytes())
        ));
        lines.push(line);
    }
    lines
}

/// An exploration's result as its `Debug` printed it when the pins were
/// made (the fields added since, which name the engine, are left out).
fn old_debug(r: &mkipc::explore::ExploreResult) -> String {
    format!(
        "ExploreResult {{ runs: {:?}, failure: {:?}, complete: {:?}, coverage: {:?} }}",
        r.runs, r.failure, r.complete, r.coverage
    )
}

/// Computed before `ScriptMachine` (see the module docs); the lines of the
/// pipe, FIFO and shared-memory examples (`counter-messages`, `fifo`,
/// `pipe-broken`, `pipe-eof`, `pipeline-values`, `shared-counter`) were
/// added with those files. For the three
/// examples that deadlock (deadlock, dining-philosophers,
/// master-worker-buggy), the report hashes (the middle of each triple) and
/// the exploration were re-pinned when deadlock reports learned to name who
/// could end each wait; their traces and series (first and last of each
/// triple) are unchanged. dining-philosophers was re-pinned whole when it
/// became two families (`fork[i]`, `phil[i]`: the names in the trace
/// changed) receiving on mailbox families held in variables (opened at
/// first use, not at the start: fewer steps). master-worker-select and
/// pins/constructs were re-pinned when a `select` whose send arms find
/// their queues full stopped polling every 10 µs and waits for the
/// kernel's send-possible notification instead (fewer steps, no poll
/// ticks of virtual time), and their report hashes again when a process's
/// received count left out those notifications (traces unchanged).
/// The runs that changed when a message handed to a waiting receiver
/// began to keep its place in the capacity until taken (the kernel's
/// capacity rules: a send right after a hand-off may find the queue full)
/// were re-pinned then: `master-worker.toml`, `master-worker-buggy.toml`, `master-worker-select.toml`, `pipe-broken.toml`, `pipeline-values.toml`, `ring-rpc.toml`, `pins/constructs.toml`; master-worker again when a receive stopped taking a parked sender's message past a handed one;
/// `deadlock.toml`, `direct-vs-indirect.toml` and `master-worker.toml` (receivers sharing a
/// mailbox) when whoever of several waiting receivers takes first began to take the oldest
/// message handed over (the kernel's group hand-off).
const PINNED: &str = "
bundled:capacity-bounded.toml 6056b5692f4f3e59/1388c30850c56f57/76c46c1a97f10c22 0cf2dbf653836523/2f47648a6ab18d10/c7d9c20d5d0e5177 6056b5692f4f3e59/1388c30850c56f57/76c46c1a97f10c22 0cf2dbf653836523/2f47648a6ab18d10/c7d9c20d5d0e5177 d4a140bde513f990/b301f68719a51cb1/c7d9c20d5d0e5177 d1a71308d3871de8/1d61a8662275efec/76c46c1a97f10c22 e85bda1f5b1ad4b9/dcd1f614fc04cc23/c7d9c20d5d0e5177 d1a71308d3871de8/97a24e6b8932c6ca/76c46c1a97f10c22 explore:aa83d4149d71d395
bundled:capacity-unbounded.toml 14822c090946df97/5feb88f3bf4650d9/f6fae4c6fa4084df 3df957796355268b/d1863afef0aa7a82/5ec61765139a71c4 14822c090946df97/5feb88f3bf4650d9/f6fae4c6fa4084df 3df957796355268b/d1863afef0aa7a82/5ec61765139a71c4 d03a3a42687d2c9c/818b71aa7cec907f/5ec61765139a71c4 c38ed6509d258e83/3ce11a7e5f53fc86/f6fae4c6fa4084df 5ae18b52d0da617b/e2c945750ab02cfd/5ec61765139a71c4 c38ed6509d258e83/c53e68099e7e1fc0/f6fae4c6fa4084df explore:b6d0d9122140544b
bundled:capacity-zero.toml bd893d2b2b867421/dd3f483ad3b555c2/564208c681af1d6f 3d653d397738038f/ddac308fa0c3a014/564208c681af1d6f bd893d2b2b867421/dd3f483ad3b555c2/564208c681af1d6f 3d653d397738038f/ddac308fa0c3a014/564208c681af1d6f bd893d2b2b867421/78c3a4e0a4b949a1/564208c681af1d6f 88b2f3755e74aeef/45388ddbf61002c1/564208c681af1d6f 3d653d397738038f/8dd9917b31898cb7/564208c681af1d6f 88b2f3755e74aeef/71e94da69773a603/564208c681af1d6f explore:bee71460a6d789c6
bundled:counter-messages.toml 79bf9aa19d97822d/6bd2af0b84931af7/cb4b575e7be001fb 72dba7872368141f/7939e1a6d5b13333/58ba0423c06c93f0 31aa88a49dff1279/d0b77791e78bf127/7e881bb000ea86fc 4694f8bcc825b034/882df6d1e532a4b0/9b23621a674fb368 86734358d35fced9/1a8a580c4df088cc/81aa9632675c10e0 6230f89eefc289de/f0d2cfa018145306/b545e92943e23718 494078ff87a43170/d1b5ac58bf8ab2e7/d8db9effef59e8c5 b4cd6cd43378383a/a0f6282c841960ca/81aa9632675c10e0 explore:823138f901cb740b
bundled:deadlock.toml 8a2266e2649d0cf5/cd969f676a8984ed/a3437a0683a1d8b8 161d600d43881901/9181f7534f3d8350/1fee2cfaaede1e63 612503ba7e92e9f7/fb08ea261141981b/8150ea78182d4cf4 30a95e182a842fa4/107fe7c6be6aed63/69dad41a8f194b58 5964fc74ebce2b30/9fcffd7c5d7d40c8/64382d23457cfed1 ce1cc16770f643f9/2c9d80032e22dcbb/8afe13bb3466e759 a69dfbd52f3f6883/00c27e573d3bcbb0/15a59f123eace505 083bf0e252211c75/e698053a8b14e1eb/1fee2cfaaede1e63 explore:45192cc10c92d9b1
bundled:dining-philosophers.toml 2422015351d69de4/1848bb2001717c31/edbc99234a3b6f11 13f3f6ffecd059bb/7879b4a642a09461/a90901f3511058f0 2422015351d69de4/1848bb2001717c31/edbc99234a3b6f11 13f3f6ffecd059bb/7879b4a642a09461/a90901f3511058f0 c64eaebdb1b38d62/fe3c4ac61033810e/7858fdb68a47a361 e79f2fd2595186c9/c80b29d00f324e4c/1764c4d9e2a36bc8 1da4daae65ce1ce8/eddcc7a880b5388f/fd9140dec497a381 0c19bde6812a877b/32dc5fc2097b376e/4df676c208475b46 explore:9781a9a00832373c
bundled:direct-vs-indirect.toml 00656a3673f6da3e/5b7dc2681939cc74/bcd5a227de1e3af9 8a34e106539e07a1/a6eeb52e62196f98/bcd5a227de1e3af9 7d9b6e0cf0e54cc9/6c271db9f589aab7/793a0d2224696c23 cc7520b1f0ee1fb3/f73c401b6552e17a/bcd5a227de1e3af9 4314daac86b92f37/2da53106879a7876/e50fce3f2f376029 17d407d297318d6d/300dbb23abe687f5/bcd5a227de1e3af9 c59831a51c0b8f38/95e45d14cd0cf551/815a386c433a47c0 c63e50815e1e4c99/51555ba59e25952d/bcd5a227de1e3af9 explore:32d288de5fc710f7
bundled:fan-in-fan-out.toml e481590e4e9066f0/5942a99c319e2acf/6a5fe0d98fbb0fb8 a10b74820c2c31c8/6156d9354b091abb/6a5fe0d98fbb0fb8 34df60d017da9640/6bf80e1a2f62fc32/1e7a7cdc0e633ce4 f25ba6d7982bb3b5/05bbbad330439194/1e7a7cdc0e633ce4 bd9c4c69db5ad6a3/2f0bfafd310e99cb/dadf524bdf070ecf d5d24544dea73dba/d5f5448d75b890ab/dadf524bdf070ecf d96c6bf8384a1fe4/cf7c8cc98fe784ed/b802d16201d73c47 1657715c5de9b290/1efdfeb060b743dd/b802d16201d73c47 explore:b6d0d9122140544b
bundled:fifo.toml 81eba6b1d372d006/eeccc6711e5d446a/0e3430c55748b656 c0029fe3c8d4f4f9/1e6c65dd2667eab3/b3c9cd2715395027 30f527d7cc66071d/719ddebfcea766a4/3ae4043399b26b7a 29088f2c3c86fa1c/9f05416cb97f2d1b/0c1ea136ca9f6934 cae88a553001896c/896756175217808a/0c1ea136ca9f6934 4c0b034ce4d3e930/b4e96fbf898b7fac/0c1ea136ca9f6934 920500f439be1b89/68b99fb1f9143c8c/504e3c3208037f6d 0d8a7bd3a6dbfb9e/f541cdfebfda5acd/98872e0157f2f83f explore:4e3dafecefe5448f
bundled:master-worker.toml e81775880354167f/1db695be30b61e69/4024abce88ea7428 9ceb1ce648b752c6/00c750516ec5ebb5/4024abce88ea7428 79171e6ec0c817c0/47af662efa927d97/02fa6d0a3b27d939 2ff7c12f94b48f98/a3288b455ab7fc76/921e682f2c951152 e81775880354167f/1db695be30b61e69/4024abce88ea7428 9ceb1ce648b752c6/00c750516ec5ebb5/4024abce88ea7428 aa82bb1d35d2b2fd/3cf68055ec7bf188/564439f7e54befae 88a65e606e822f41/a5919fa38019b595/564439f7e54befae explore:fa517a447af16480
bundled:master-worker-buggy.toml ad6da0c1402c036a/484a10cd9b7b927d/600cb2c362be38a0 0aad276f6cd2fb5a/10c25f84d105e6e0/e8824c776161895b 43c5a04b8fe5943c/9afdd6d1f7fb0e0e/e8824c776161895b 0aad276f6cd2fb5a/58b57aba01c22e8c/e8824c776161895b 511fe7087d7d1a6b/20ec62ebaf0319b6/e8824c776161895b 551c5e03ac101267/06b0140721ebd707/e8824c776161895b f82cacc60f2f1e06/2ace60c96b7a26ee/e8824c776161895b 551c5e03ac101267/0510971814b75a59/e8824c776161895b explore:e39d10184cc7bbb1
bundled:master-worker-select.toml 7e8b3d1497a5daa8/26ddb0c31ae3ab9a/3a12380ad00819a3 2edf4b6a02a22d4c/cfa97bb31ec5c733/d1ce866995a665b8 2034119f49fdab6f/b16ceb81197abfa9/6948f2ff677f8257 6f5798d5a25c462c/d4e34a215204fae5/d1ce866995a665b8 5080fb610f95e008/347ac1126c78072c/a69d3a23e7865a57 9cc2d44bcf68b5eb/37f0d09ccd4bcc08/0eee7cc7dffbc19f 6a5807f9acc9a4d4/2e974cd5a42c0b50/8b3439e72f201280 4fe0da7d7bac5e63/26997a3ff08b05bd/e041153b4c89cb93 explore:ccaa6b3ea6b8bb2d
bundled:mm1k.toml 95dd17d944347482/3c59752f3c1a70e9/b916f759b5daee9f 0d978a1f1169e8ef/004d785312e8bc43/b916f759b5daee9f d1c7b97c5ca367fa/c3d7d7e18b8a820b/aca7dff7a4497e10 d40bfc54b7cbe704/743050fe8f5d4c2f/aca7dff7a4497e10 b8a0bba6234a2f86/6384165cff41bd48/5f696ce073eb7aff 98e311a362e6f198/dd6e7d446134d532/5f696ce073eb7aff f76bd6031ee8192e/acae24719040df5a/f9b044eff4a13880 336a5852a4b40d6e/f0462d3dedd985c0/f9b044eff4a13880 explore:bee71460a6d789c6
bundled:ownership.toml 6b8229f4eb368dc2/c080c4e94fdb2a63/1b0a685795820f0e 98696410c927d827/6d49c309a2e31abd/1b0a685795820f0e 6b8229f4eb368dc2/c080c4e94fdb2a63/1b0a685795820f0e 98696410c927d827/6d49c309a2e31abd/1b0a685795820f0e 7cd5e4db3defb0b3/56818d70fda66ddb/1b0a685795820f0e df8e65d9516a3ffe/fbd1de265839b08e/1b0a685795820f0e a00745a70e9da980/d499fcc815b739d0/1b0a685795820f0e d33d9af7d5c166fd/a495f42ddb9c0770/1b0a685795820f0e explore:5e4397cc06c7fc52
bundled:pipe-broken.toml 7b34f66b88a1197f/630adab3e60d5db3/c6403981c590f2a6 3dc58beffb6a545e/8540477b2aff671f/07f8d3bb074fcf76 6b69f38216544a54/8d6843c7177301b5/93dd1f19fb874e66 3dc58beffb6a545e/078b7eee769272a2/07f8d3bb074fcf76 69a7a259316df9ea/10107b4d2f02a0a5/a6058b22716cdd0d 9fbda4af42f0032b/58c372b59f4164a8/671f29e8272a29dd c76393e57f4b6dbe/e6f01c2affa31585/a6058b22716cdd0d 9fbda4af42f0032b/ccb143f3903ac0a6/671f29e8272a29dd explore:d9769b8c71945993
bundled:pipe-eof.toml 49eb03dd207b82ce/a730a94f30ef9942/fc89af41418e9ee4 68483db2db233545/25f414abe015b0a0/494a5f019267cc1c d678436889bd155f/a2ae9a0dadaf6be3/2b0a65cc5ceaddd8 68483db2db233545/533810b5998ddc5f/494a5f019267cc1c 86b3cc1f8d51b825/e32e82c74cd2ae0d/5ec7b1a1886db665 c1422014b2f83e9e/477ebed572564d37/f8500cb71969de34 19b4b2ddea6e8851/69a6551b3a1aa1e4/94f240b301739128 c1422014b2f83e9e/1e92e9b09ebca699/f8500cb71969de34 explore:c844b885e8b437c4
bundled:pipeline.toml a77efe81cb4c4256/8e850b0ae5d4553a/aa3e0d71e69e9435 31d41b39b54ffcca/0c32ef02bee2d646/aa3e0d71e69e9435 a77efe81cb4c4256/8e850b0ae5d4553a/aa3e0d71e69e9435 31d41b39b54ffcca/0c32ef02bee2d646/aa3e0d71e69e9435 e9673d6fe95b889e/1202520cfa1c2f85/aa3e0d71e69e9435 31837e624259a233/e472cd12d353fecf/aa3e0d71e69e9435 4bf7e6d1d575a9d6/72d38448339cffc5/aa3e0d71e69e9435 83efa50204cdd8cf/b6e108d8e769dc0f/aa3e0d71e69e9435 explore:f10c3909a97aef13
bundled:pipeline-values.toml bc7bce52e48e6018/f2c3fc93d8e147d2/6d8ab6c9528390e7 2e7a5271c005e747/fcbe3daa6be324df/760a91aca738639c d89cdd902b757259/771147281790ad14/57cfd79328859974 8c43804b21f48967/c2f851d2a03ac37e/760a91aca738639c b38cacf3f6fa2246/287a606968f256cc/a941340c1dd7dbdb b25d0644b3e0c9d0/2606164961994d2f/3f89075fb4226570 75065023f3096dd5/5af4bf3fe12fcf51/d5dd59b62380c894 2342be587f5ae079/8fe2faa0081d7cc5/0dd94299e1bc0318 explore:679d8dc55c07edae
bundled:producer-consumer.toml c636ffeb5e081b82/74858603a7171326/30e782f1d43186c6 196cf51b6ea0f46f/53718030e2a8018b/20326edd12e35d97 c636ffeb5e081b82/74858603a7171326/30e782f1d43186c6 196cf51b6ea0f46f/53718030e2a8018b/20326edd12e35d97 c278676ccf05580f/46f419944de0ec0e/1b0b0eecc77c8674 f143e216b8918145/d0f63f5666067c39/d886ab0d6ab197d1 c6995b31a6746f4b/47ae7fd93f74706a/edb3652d4f7e304b f27b9de3b9d15e3c/3d86b4dd30686c55/e077c8673729e980 explore:41d74b124ce1554f
bundled:ring-rpc.toml d63f4a6c1dd98691/03f57a07eef3817e/7d3014a71f61f601 413ac82d807e787f/32ebfbbb4657e3ec/198d90d1cc949ce6 d63f4a6c1dd98691/03f57a07eef3817e/7d3014a71f61f601 413ac82d807e787f/32ebfbbb4657e3ec/198d90d1cc949ce6 d3e4df511501474b/c84a9178f488d4d7/0ebb95d9b27d5b5d 57c3ba3af8e34592/ecc15d8121d2f430/9d3fad9f48b10cfb f602789c6c3296fe/aeba9f5996d49e3b/f7398a248bee45da 0408009862ed32da/f689b5a2f93a0de7/fa2ee219e11a95be explore:7019f2afd1f09fd8
bundled:rpc.toml 5a47fbe0d131521d/f5e51a31fde17ad1/7c23c77a74fc9a0c 2b57cf2a8484c9b5/3a70804dd61b4fee/6662b190de25a647 d468b5e4502206d1/085d367276692983/0f149378581085a3 af41f040b7999224/b7e4383200cfef4b/3bd4a13130d4e3c8 6a60ee88e13a7425/33392f3cb60ef8bf/7c23c77a74fc9a0c 2b57cf2a8484c9b5/b10e7878749e418c/6662b190de25a647 bc328a58269f8e43/07a156665c76bd66/3bd4a13130d4e3c8 0b2b06cb681b44a5/cb8b3bfd0f414a55/7c23c77a74fc9a0c explore:e9f2dcd74326489e
bundled:shared-counter.toml 26afc4c229d7733b/2ad92a6ecc6bdc91/4ba67a27453345fa f1f83f7035a4d443/32799dfee358018a/f9e15043587cc4cd 5ae7a00b1959dee5/85d7b1af98f55fa3/e317a5c75ae44e8a 58a68bd229ca2865/21ce7b2ca70955bb/b1c43a36765a0385 dbeb63fdf2b5a8ab/ddc8aacf4061e094/e317a5c75ae44e8a 848b5d4b72fe7db9/e8c27546dfa1e3e8/b1c43a36765a0385 f6fd50ff0e9fbb1d/668d6a4c56b2a3f6/f9e15043587cc4cd 7a084e9aacd4e831/852ec2cbc99cd824/009bcd9e8d4e4d59 explore:cbb58377af83f17a
pins/constructs.toml 9995ce1d4230b646/951dc5210305ba48/53ac3c50717ce500 d959b99bc691b0fd/8ec308f780066d37/9b690119406cc429 b1047c6f82641f3d/8d541e32e7368f97/caaa7573cc46f201 14c1e7c880274abf/983311dd5a7d7f5b/785ff5b6ec39e388 d2eb10b4d2058b52/2453f659fddc6208/3740b9075b678a9a 85817c14e2454ae5/d90e9033a2e6792b/3740b9075b678a9a 2b9df5d07c0386b5/2a465c9de418fef0/f49814e0a5b35740 2e8c5d7632a61700/5b760952c306900a/360898c846361a11 explore:aaa2d82fea169fd8
";
#[test]
fn every_example_runs_as_it_did_before_scripts_became_machines() {
    let got = pins();
    if std::env::var_os("MKIPC_PRINT_PINS").is_some() {
        for l in &got {
            println!("{l}");
        }
    }
    let want: Vec<&str> = PINNED.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(got.len(), want.len(), "one line per scenario file");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w.trim(), "the simulator's run changed");
    }
}
