import ArgumentParser
import SluiceCore

@main
struct SluiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Sluice moves data from files, databases and HTTP pushes into analytics storage, exactly once.",
        discussion: """
            A pipeline file (YAML) declares pipelines, each a source and a sink:

              pipelines:
                events:
                  source:
                    file: { path: "data/events/*.csv" }
                  sink:
                    ndjson: { path: out/events }

            Typical use:
              sluice validate pipelines.yaml        check the file before any data moves
              sluice doctor -c pipelines.yaml       check a deployment: connections, privileges, slots, disk
              sluice run pipelines.yaml             run every pipeline until its input is exhausted
              sluice serve pipelines.yaml           serve the HTTP push endpoint and run the pipelines
              sluice dlq list                       see records that could not be ingested
              sluice state show events              see where a pipeline stands
              sluice schema show events             see a pipeline's schema versions and drift
              sluice queue status -c pipelines.yaml see a JetStream consumer's lag and pending acks

            State (checkpoints, dead letters, dedupe keys) lives in .sluice/state.db unless the
            file sets `state:`. Run `sluice components` for every source and sink with an example.
            """,
        version: "\(SluiceVersion.current) (commit \(buildCommit))",
        subcommands: [
            RunCommand.self, BackfillCommand.self, CDCCommand.self, QueueCommand.self, ServeCommand.self, KeysCommand.self, SchemaCommand.self,
            ValidateCommand.self, DoctorCommand.self, StateCommand.self, DLQCommand.self, InspectCommand.self, StorageCommand.self, AlertsCommand.self,
            StatusCommand.self,
            TopCommand.self, TapCommand.self, PlanCommand.self, CostCommand.self, LifecycleCommand.self,
            ComponentsCommand.self,
        ]
    )
}
