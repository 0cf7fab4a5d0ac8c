// Validates Argo CD and Flux objects against their CRDs' OpenAPI schemas, as packaged by the npm
// @kubernetes-models packages (.ci/run installs them). Input on stdin: JSON [[file, object], ...].
// Prints one line per object ("<file>: <kind> ok" or "<file>: <what is wrong>"); exit 1 if any is wrong.
import fs from "node:fs";
import { Application } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1";
import { Kustomization } from "@kubernetes-models/flux-cd/kustomize.toolkit.fluxcd.io/v1";
import { GitRepository } from "@kubernetes-models/flux-cd/source.toolkit.fluxcd.io/v1";

const MODELS = {
  "argoproj.io/v1alpha1 Application": Application,
  "kustomize.toolkit.fluxcd.io/v1 Kustomization": Kustomization,
  "source.toolkit.fluxcd.io/v1 GitRepository": GitRepository,
};

let failed = 0;
for (const [file, object] of JSON.parse(fs.readFileSync(0, "utf8"))) {
  const Model = MODELS[`${object.apiVersion} ${object.kind}`];
  if (!Model) {
    console.log(`${file}: no CRD schema here for ${object.apiVersion} ${object.kind}`);
    failed += 1;
    continue;
  }
  try {
    new Model(object).validate();
    console.log(`${file}: ${object.kind} ok`);
  } catch (error) {
    console.log(`${file}: ${error.message.split("\n")[0]}`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
