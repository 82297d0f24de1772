# A small closure from plain derivations (no nixpkgs needed): busybox from the host, a data
# path, and an application script that references both.
{ busybox ? "/bin/busybox", greeting ? "hello from a layerforge example" }:
let
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = busybox;
    args = [ "sh" "-c" script ];
  };
in rec {
  busyboxPkg = mk "busybox-example-1.0" ''
    ${busybox} mkdir -p $out/bin
    ${busybox} cp ${busybox} $out/bin/busybox
    for t in sh echo cat; do ${busybox} ln -s busybox $out/bin/$t; done
  '';
  greetingData = mk "greeting-data-1.0" ''
    ${busybox} mkdir -p $out/share
    ${busybox} echo "${greeting}" > $out/share/greeting
  '';
  hello = mk "hello-example-1.0" ''
    ${busybox} mkdir -p $out/bin
    ${busybox} echo "#!${busyboxPkg}/bin/sh" > $out/bin/hello
    ${busybox} echo "${busyboxPkg}/bin/cat ${greetingData}/share/greeting" >> $out/bin/hello
    ${busybox} chmod 555 $out/bin/hello
  '';
}
