/// The version of Sluice: `sluice --version`, the `created_by` of Parquet files, the CHANGELOG.
public enum SluiceVersion {
    public static let current = "0.1.0"
}
