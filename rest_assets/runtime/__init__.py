"""Runtime pieces the compiler plugs into dlt: HTTP policy, auth, paginators, secrets."""
