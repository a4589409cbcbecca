fn main() {
    std::process::exit(pgtrail::cli::main());
}
