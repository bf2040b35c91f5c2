//! `cgi-bin/osmp.cgi`: the OSMP terminal endpoint, a drop-in for NoDeny's `osmp.pl`.

fn main() {
    std::process::exit(paysys::endpoint::run(&paysys::pipeline::OSMP_CGI));
}
