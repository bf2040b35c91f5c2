#!/usr/bin/env bash
# Writes the man pages of the admin tool from its own --help texts, so that the two never
# disagree: paysys.1 from `paysys --help`, and paysys-CMD.1 from `paysys CMD --help` for
# every command `paysys --help` lists. Run by scripts/deb.sh; see INSTALL, section 17.
#
#   scripts/manpages.sh PAYSYS OUTDIR [FILES]
#
#   PAYSYS   the paysys executable to ask (it is run, so it must be for this machine)
#   OUTDIR   where paysys.1 and paysys-*.1 go (created; earlier pages there are replaced)
#   FILES    optional roff text for paysys.1's FILES section (where a package puts things)
#
# Environment: SOURCE_DATE_EPOCH dates the pages (default: now); PAYSYS_VERSION names the
# version in their footer (default: none).
#
# Each page: NAME (the command and the first clause of its line in `paysys --help`),
# SYNOPSIS (the usage lines), DESCRIPTION (the rest of the help text, verbatim), SEE ALSO.
# The help texts are laid out for a terminal, so they stay as they are (no filling):
# backslashes, hyphens, leading dots and non-ASCII characters are escaped for roff.
set -euo pipefail

say() { printf 'manpages.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ $# -ge 2 ] || die "usage: $0 PAYSYS OUTDIR [FILES]"
paysys=$1
out=$2
files=${3:-}
[ -x "$paysys" ] || die "$paysys is not an executable"
command -v perl >/dev/null || die "perl is needed (Debian: perl-base)"

date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)
source="paysys${PAYSYS_VERSION:+ $PAYSYS_VERSION}"
main_help=$(env -u PAYSYS_CONFIG "$paysys" --help) || die "$paysys --help failed"

# Text -> roff, line by line, for no-fill mode.
roff() {
    perl -CS -pe '
        s/\\/\\e/g;
        s/-/\\-/g;
        s/^([.\x27])/\\&$1/;
        s/([^\x00-\x7f])/sprintf("\\[u%04X]", ord($1))/ge;
    '
}

# The commands `paysys --help` lists, in its order: "  paysys CMD ..." lines.
mapfile -t commands < <(printf '%s\n' "$main_help" | sed -n 's/^  paysys \([a-z][a-z0-9-]*\).*/\1/p' | awk '!seen[$0]++')
[ "${#commands[@]}" -gt 0 ] || die "$paysys --help lists no commands"

# A command's NAME line: its description in `paysys --help` (the indented text after its
# usage lines), joined, up to the first ": ", "; ", ". " or "? " outside parentheses.
whatis() {
    printf '%s\n' "$main_help" | perl -CS -ne '
        BEGIN { $cmd = shift @ARGV; $in = 0; $text = ""; $done = 0 }
        # Read to the end (no "last"): printf would die of SIGPIPE when the reader stops early.
        next if $done;
        if (/^  paysys (\S+)/) {
            if ($in && $text ne "") { $done = 1; next }
            $in = ($1 eq $cmd);
            # A description on the usage line itself, after two or more spaces.
            $text .= " $1" if $in && /^  paysys .*?\S  +(\S.*)$/;
            next;
        }
        if ($in && /^\s+(\S.*)$/) {
            my $t = $1;
            next if $text eq "" && $t =~ /^(paysys |\[)/;
            $text .= " $t";
        } elsif ($in && $text ne "") { $done = 1 }
        END {
            $text =~ s/^\s+//;
            my ($depth, $cut) = (0, length $text);
            for my $i (0 .. length($text) - 1) {
                my $c = substr($text, $i, 1);
                $depth++ if $c eq "(";
                $depth-- if $c eq ")" && $depth > 0;
                if ($depth == 0 && $c =~ /[:;.?]/ && substr($text, $i + 1, 1) eq " ") {
                    $cut = $c eq "?" ? $i + 1 : $i;
                    last;
                }
            }
            # lexgrog (whatis, apropos) reads this line raw: plain ASCII where it can be.
            my $what = substr($text, 0, $cut);
            $what =~ s/\x{2026}/.../g;
            $what =~ s/\x{2192}/->/g;
            print $what, "\n";
        }
    ' "$1"
}

# One page: NAME TITLE WHATIS HELP-TEXT SEE-ALSO [FILES]
page() {
    local name=$1 title=$2 what=$3 help=$4 also=$5 extra=${6:-}
    local synopsis description
    if [ "$name" = paysys ]; then
        # `paysys --help` is "usage:" and then every command's usage: all of it describes.
        synopsis=$'paysys COMMAND [ARGUMENTS]\npaysys COMMAND --help'
        description=$(printf '%s\n' "$help" | sed -e '1{/^usage:$/d}')
    else
        # The usage lines: the first ("usage: …") and those that continue it.
        # (awk reads to the end: a reader that stops early would make printf die of SIGPIPE.)
        synopsis=$(printf '%s\n' "$help" | awk '
            done { next }
            NR == 1 { sub(/^usage: */, ""); print; next }
            /^ +(paysys |\[)/ { sub(/^ +/, ""); print; next }
            { done = 1 }')
        description=$(printf '%s\n' "$help" | awk '
            NR == 1 { next }
            !body && /^ +(paysys |\[)/ { next }
            { body = 1; print }' | sed -e '/./,$!d')
    fi
    {
        printf '.\\" Written by scripts/manpages.sh from `%s --help`: do not edit.\n' "${name//-/ }"
        printf '.TH %s 1 "%s" "%s" "paysys manual"\n' "$title" "$date" "$source"
        printf '.SH NAME\n%s \\- %s\n' "${name//-/\\-}" "$(printf '%s\n' "$what" | roff)"
        printf '.SH SYNOPSIS\n.nf\n%s\n.fi\n' "$(printf '%s\n' "$synopsis" | roff)"
        printf '.SH DESCRIPTION\n.nf\n%s\n.fi\n' "$(printf '%s\n' "$description" | roff)"
        [ -z "$extra" ] || printf '.SH FILES\n%s\n' "$extra"
        printf '.SH SEE ALSO\n%s\n' "$also"
    } >"$out/$name.1.tmp"
    mv -f "$out/$name.1.tmp" "$out/$name.1"
}

mkdir -p "$out"
rm -f "$out"/paysys.1 "$out"/paysys-*.1

see_all=""
for c in "${commands[@]}"; do
    see_all+="${see_all:+,
}.BR paysys\\-${c//-/\\-} (1)"
done
page paysys PAYSYS "the admin's command line of the paysys payment endpoint" \
    "$main_help" "$see_all" "$files"

for c in "${commands[@]}"; do
    help=$(env -u PAYSYS_CONFIG "$paysys" "$c" --help) || die "$paysys $c --help failed"
    case "$help" in
    usage:\ paysys\ "$c"*) ;;
    *) die "$paysys $c --help does not start with 'usage: paysys $c': $(printf '%s\n' "$help" | head -1)" ;;
    esac
    what=$(whatis "$c")
    [ -n "$what" ] || die "no description of $c in $paysys --help"
    upper=$(printf '%s' "paysys-$c" | tr '[:lower:]' '[:upper:]')
    page "paysys-$c" "${upper//-/\\-}" "$what" "$help" ".BR paysys (1)"
done
say "wrote $((${#commands[@]} + 1)) pages into $out"
