// A tiny classifier of 2-D points into 3 classes (three Gaussian blobs), trained with Adam on
// the cross-entropy -sum(onehot * log_softmax(logits)). Prints the loss and accuracy.
#include <gumbel/gumbel.hpp>

#include <cstdio>

int main() {
  using namespace gumbel;
  constexpr Index kPerClass = 200;
  constexpr Index kClasses = 3;
  Generator gen(2020);

  // Three blobs centred at the corners of a triangle.
  const double centres[kClasses][2] = {{0, 2}, {-2, -1}, {2, -1}};
  Matrix<float> x(kPerClass * kClasses, 2);
  Matrix<float> onehot = Matrix<float>::Zero(kPerClass * kClasses, kClasses);
  const Matrix<float> noise = gen.normal<float>(kPerClass * kClasses, 2, 0.0f, 0.8f);
  for (Index i = 0; i < x.rows(); ++i) {
    const Index c = i % kClasses;
    x(i, 0) = float(centres[c][0]) + noise(i, 0);
    x(i, 1) = float(centres[c][1]) + noise(i, 1);
    onehot(i, c) = 1;
  }

  nn::Linear<float> hidden(2, 16, gen), output(16, kClasses, gen);
  ParameterList<float> params = hidden.parameters();
  for (auto* p : output.parameters()) params.push_back(p);
  optim::Adam<float> adam(params, {/*lr=*/0.02f});

  Tape<float> tape;
  for (int step = 1; step <= 200; ++step) {
    tape.clear();
    adam.zero_grad();
    const auto logits = output(relu(hidden(tape.constant(x))));
    const auto loss = -mean(sum_rows(mul(tape.constant(onehot), log_softmax(logits))));
    tape.backward(loss);
    adam.step();
    if (step % 50 == 0) {
      Index correct = 0;
      for (Index i = 0; i < x.rows(); ++i) {
        Index predicted = 0;
        logits.value().row(i).maxCoeff(&predicted);
        correct += predicted == i % kClasses;
      }
      std::printf("step %3d  loss %.4f  accuracy %.3f\n", step, double(loss.item()),
                  double(correct) / double(x.rows()));
    }
  }
  return 0;
}
