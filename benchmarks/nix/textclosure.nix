# A text-heavy benchmark closure from the host's own files (no nixpkgs needed): slices of
# /usr/share/doc, /usr/share/locale, /usr/include, the English man pages (decompressed, so
# they are text), Python's standard library and dist-packages, Vim's runtime, Perl, i18n and
# zoneinfo, one store path per slice, linked into a tree of references under one root.
# About 55 store paths, ~700 MB and ~45,000 mostly small files on a Debian 12 host.
# `salt` changes every derivation (new store paths: a machine that has built none of them).
{ busybox ? "/bin/busybox", salt ? "" }:
let
  bb = busybox;
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = bb;
    args = [ "sh" "-c" script ];
    PATH = "/bin:/usr/bin";
    inherit salt;
  };
  # The top-level entries of `src` whose position (in sorted order) is `i` modulo `n`.
  slice = { name, src, n, i, unzip ? false }: mk "${name}${toString i}-1.0" ''
    ${bb} mkdir -p $out/share/${name}
    k=0
    for f in ${src}/*; do
      if [ -e "$f" ] || [ -L "$f" ]; then
        if [ $((k % ${toString n})) -eq ${toString i} ]; then ${bb} cp -a "$f" $out/share/${name}/; fi
        k=$((k + 1))
      fi
    done
    ${if unzip then "${bb} find $out -type f -name '*.gz' -exec ${bb} gunzip -f {} +" else ""}
    ${bb} find $out -type l -name '*.gz' -exec ${bb} rm {} +
    ${bb} echo "${if i == 0 then "" else (slices name).${toString (i / 2)}}" > $out/share/${name}.needs
  '';
  sources = {
    doc = { src = "/usr/share/doc"; n = 8; };
    locale = { src = "/usr/share/locale"; n = 10; };
    include = { src = "/usr/include"; n = 8; };
    man = { src = "/usr/share/man/man[2-9]*"; n = 1; unzip = true; };
    man1 = { src = "/usr/share/man/man1"; n = 6; unzip = true; };
    python = { src = "/usr/lib/python3.11"; n = 6; };
    pypkgs = { src = "/usr/lib/python3/dist-packages"; n = 6; };
    vim = { src = "/usr/share/vim/vim*"; n = 3; };
    perl = { src = "/usr/share/perl/5*"; n = 3; };
    i18n = { src = "/usr/share/i18n"; n = 2; };
    zoneinfo = { src = "/usr/share/zoneinfo"; n = 1; };
  };
  slices = name: let s = sources.${name}; in builtins.listToAttrs (builtins.genList (i: {
    name = toString i;
    value = slice ({ inherit name i; } // s);
  }) s.n);
  all = builtins.concatLists (map (name: builtins.attrValues (slices name)) (builtins.attrNames sources));
in {
  textapp = mk "textapp-1.0" ''
    ${bb} mkdir -p $out/bin
    ${bb} echo "${builtins.concatStringsSep " " all}" > $out/needs
    ${bb} echo '#!/bin/sh' > $out/bin/textapp
    ${bb} chmod 0755 $out/bin/textapp
  '';
}
