"""DentGate clients: technician uploader, station agent, auditor tool and the `dentgate` command."""
