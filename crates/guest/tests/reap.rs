//! init's child handling: exit codes, signals unblocked for the child, orphans reaped.
//! One test in its own binary, because reaping with waitpid(-1) would collect the children
//! of other tests running in the same process.

use guest::init::reap;

#[test]
fn init_child_exit_codes_signals_and_orphans() {
    // SAFETY: prctl(2) marks this process a child subreaper, as PID 1 is implicitly.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
    reap::block_all_signals().unwrap();

    // The child's own exit status comes back; its orphan is collected on the way.
    let pid = reap::spawn(&["/bin/sh".into(), "-c".into(), "sleep 0.1 & exit 3".into()]).unwrap();
    assert_eq!(reap::reap_until(pid), 3);

    // The child runs with signals unblocked: SIGTERM to itself kills it (128 + 15). It
    // lives long enough for the first child's orphan to end and be reaped meanwhile.
    let pid = reap::spawn(&[
        "/bin/sh".into(),
        "-c".into(),
        "sleep 0.4; kill -TERM $$; sleep 5; exit 0".into(),
    ])
    .unwrap();
    assert_eq!(reap::reap_until(pid), 143);

    // A new session: the child is its own session leader, and PATH is init's.
    let pid = reap::spawn(&[
        "/bin/sh".into(),
        "-c".into(),
        r#"[ "$(ps -o sid= -p $$ 2>/dev/null || cut -d' ' -f6 /proc/$$/stat)" -eq $$ ] && [ "$PATH" = "/sbin:/usr/sbin:/bin:/usr/bin" ]"#.into(),
    ])
    .unwrap();
    assert_eq!(reap::reap_until(pid), 0);

    // The orphan `sleep 0.1` of the first child was reaped while waiting for the second:
    // no child, live or zombie, is left.
    let mut status = 0;
    // SAFETY: waitpid(2) with a valid status pointer, non-blocking.
    let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    assert_eq!(r, -1, "a child is left unreaped");
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ECHILD)
    );
}
