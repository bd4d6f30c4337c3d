//! The `ServiceManager` contract suite of `spacepos-testkit`, run against
//! [`ProcessSupervisor`](spacepos_windows_scm::ProcessSupervisor) with real
//! child processes (`#!/bin/sh` programs in temporary slots).

#![cfg(unix)]

mod common;

spacepos_testkit::service_manager_suite!(async {
    common::Fixture::new(spacepos_windows_scm::SupervisorOptions::default())
});
