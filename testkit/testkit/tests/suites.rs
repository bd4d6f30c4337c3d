//! The contract suites against the in-memory fakes and the file-system stores.

mod memory_state_store {
    spacepos_testkit::state_store_suite!(async {
        spacepos_testkit::fakes::MemoryStateStore::new()
    });
}

mod file_state_store {
    use spacepos_testkit::suites::Guarded;

    spacepos_testkit::state_store_suite!(async {
        let dir = tempfile::tempdir().expect("temp dir");
        Guarded::new(spacepos_fs::FileStateStore::new(dir.path()), dir)
    });
}

mod memory_terminal_store {
    spacepos_testkit::terminal_config_store_suite!(async {
        spacepos_testkit::fakes::MemoryTerminalStore::new()
    });
}

mod file_terminal_store {
    use spacepos_testkit::suites::Guarded;

    spacepos_testkit::terminal_config_store_suite!(async {
        let dir = tempfile::tempdir().expect("temp dir");
        Guarded::new(spacepos_fs::FileTerminalStore::new(dir.path()), dir)
    });
}

mod memory_credential_store {
    spacepos_testkit::credential_store_suite!(async {
        spacepos_testkit::fakes::MemoryCredentialStore::new()
    });
}

mod file_credential_store {
    use spacepos_testkit::suites::Guarded;

    spacepos_testkit::credential_store_suite!(async {
        let dir = tempfile::tempdir().expect("temp dir");
        Guarded::new(spacepos_fs::FileCredentialStore::new(dir.path()), dir)
    });
}
