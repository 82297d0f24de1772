# Benchmark closures from the host's own files (no nixpkgs needed): 48 "library" paths
# slicing /usr/lib/x86_64-linux-gnu (files under 50 MB, ~360 MB in all), linked into a tree
# of references, and three "applications" that each use most of the libraries plus an
# application-specific payload from /usr/lib/gcc. `payload` changes only the applications;
# `salt` changes every derivation (new store paths: a machine that has built none of them).
{ busybox ? "/bin/busybox", payload ? "1", nLibs ? 48, salt ? "" }:
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
  lib = i: mk "blib${toString i}-1.0" ''
    ${bb} mkdir -p $out/lib
    n=0
    for f in /usr/lib/x86_64-linux-gnu/*; do
      if [ -f "$f" ] && [ ! -L "$f" ] && [ "$(${bb} stat -c %s "$f")" -lt 50000000 ]; then
        if [ $((n % ${toString nLibs})) -eq ${toString i} ]; then ${bb} cp "$f" $out/lib/; fi
        n=$((n + 1))
      fi
    done
    ${bb} echo "${if i == 0 then "" else libs.${toString (i / 2)}}" > $out/needs
  '';
  libs = builtins.listToAttrs (builtins.genList (i: { name = toString i; value = lib i; }) nLibs);
  app = k: mk "bapp${toString k}-${payload}" ''
    ${bb} mkdir -p $out/bin $out/share
    n=0
    for f in /usr/lib/gcc/x86_64-linux-gnu/*/*; do
      if [ -f "$f" ] && [ ! -L "$f" ]; then
        if [ $((n % 3)) -eq ${toString k} ]; then ${bb} cp "$f" $out/share/; fi
        n=$((n + 1))
      fi
    done
    ${bb} echo "payload ${payload}" > $out/share/version
    ${bb} echo "${builtins.concatStringsSep " " (builtins.genList (i: if builtins.bitAnd i 7 == k then "" else libs.${toString i}) nLibs)}" > $out/needs
  '';
in {
  app0 = app 0;
  app1 = app 1;
  app2 = app 2;
}
