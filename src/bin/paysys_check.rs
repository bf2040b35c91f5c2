//! `cgi-bin/paysys_check.cgi`: every configured payment system behind one URL, the caller's
//! address picking the system; a drop-in for ABillS's `paysys_check.cgi`.

fn main() {
    std::process::exit(paysys::endpoint::run(&paysys::pipeline::PAYSYS_CHECK_CGI));
}
