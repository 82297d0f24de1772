# A flake with no inputs (so it evaluates offline, and needs no lock file): the same kind of
# plain derivations as ../nix/hello.nix, with busybox from the host. The greeting is read from
# greeting.txt, one of the flake's files: change it and `pants package` builds a new image.
{
  description = "layerforge example: a non-root image from a flake";

  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      packagesFor = system:
        let
          busybox = "/bin/busybox";
          mk = name: script: derivation {
            inherit name system;
            builder = busybox;
            args = [ "sh" "-c" script ];
          };
          greeting = builtins.readFile ./greeting.txt;
        in rec {
          busybox-tools = mk "busybox-flake-example-1.0" ''
            ${busybox} mkdir -p $out/bin
            ${busybox} cp ${busybox} $out/bin/busybox
            for t in sh echo cat id env pwd; do ${busybox} ln -s busybox $out/bin/$t; done
          '';
          hello = mk "hello-flake-example-1.0" ''
            ${busybox} mkdir -p $out/bin $out/share
            ${busybox} printf '%s' "${greeting}" > $out/share/greeting
            ${busybox} echo "#!${busybox-tools}/bin/sh" > $out/bin/hello
            ${busybox} echo "${busybox-tools}/bin/cat $out/share/greeting" >> $out/bin/hello
            ${busybox} echo "${busybox-tools}/bin/echo running as \$(${busybox-tools}/bin/id -un) in \$(${busybox-tools}/bin/pwd)" >> $out/bin/hello
            ${busybox} chmod 555 $out/bin/hello
          '';
          default = hello;
        };
    in {
      packages = forAllSystems packagesFor;
    };
}
