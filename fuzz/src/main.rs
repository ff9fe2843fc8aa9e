//! `kiln-afl TARGET`: one of kiln-fuzz's targets under AFL++ (input on standard input).

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(&(_, target)) = kiln_fuzz::TARGETS.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = kiln_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: kiln-afl TARGET (one of: {})", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
}
