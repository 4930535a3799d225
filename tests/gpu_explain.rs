//! The GPU explainer (`cnnviz::gpu::explain::GpuExplainer`): every method runs, and agrees
//! with the CPU twin (`cnnviz::explain::reference`).

mod common;

use cnnviz::explain::{ExplainOptions, ExplainRequest, Explainer, Method};
use cnnviz::gpu::explain::GpuExplainer;
use cnnviz::model::builders::default_architecture;

use common::{gpu, random_inputs, random_model};

#[test]
fn every_method_runs_and_answers_in_shape() {
    let Some(gpu) = gpu() else { return };
    let model = random_model(default_architecture(), 7);
    let mut explainer =
        GpuExplainer::new(&gpu.device, &gpu.queue, &model, ExplainOptions::default())
            .expect("explainer");
    let input = random_inputs(&model, 1, 3);
    for method in Method::ALL {
        let explained = explainer
            .explain(&input, &ExplainRequest::new(method))
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        eprintln!(
            "{method}: class {} map max {:?} auc {:?}",
            explained.class,
            explained.map.iter().cloned().fold(0.0, f32::max),
            explained
                .faithfulness
                .as_ref()
                .map(|f| (f.deletion_auc, f.insertion_auc))
        );
        assert_eq!(explained.map.len(), 28 * 28, "{method}");
        assert!(
            explained.map.iter().all(|v| (0.0..=1.0).contains(v)),
            "{method}"
        );
    }
}
